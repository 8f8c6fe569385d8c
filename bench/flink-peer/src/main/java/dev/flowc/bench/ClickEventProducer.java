package dev.flowc.bench;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

/**
 * Fills a topic with N JSON click events as fast as it can, for the Kafka
 * end-to-end benchmark that both engines read from the earliest offset:
 *
 * <pre>
 * java -cp flink-peer.jar dev.flowc.bench.ClickEventProducer \
 *     --bootstrap.servers 127.0.0.1:PORT --topic T --events N [--partitions 2]
 * </pre>
 *
 * The topic is created (with --partitions) if missing. Records have no key.
 */
public class ClickEventProducer {
    public static void main(String[] args) throws Exception {
        String servers = "localhost:9092", topic = "input";
        long events = 1_000_000;
        int partitions = 2;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--bootstrap.servers" -> servers = args[i + 1];
                case "--topic" -> topic = args[i + 1];
                case "--events" -> events = Long.parseLong(args[i + 1]);
                case "--partitions" -> partitions = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        Properties admin = new Properties();
        admin.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, servers);
        try (Admin a = Admin.create(admin)) {
            a.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) throw e;
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, servers);
        p.put(ProducerConfig.ACKS_CONFIG, "1");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        p.put(ProducerConfig.PARTITIONER_IGNORE_KEYS_CONFIG, "true");
        long t0 = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (long i = 0; i < events; i++) {
                producer.send(new ProducerRecord<>(topic, ClickEvents.json(i).getBytes(StandardCharsets.UTF_8)));
            }
            producer.flush();
        }
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("produced %d click events to %s in %.1f s (%.0f events/s)%n", events, topic, s, events / s);
    }
}
