package dev.flowc.bench;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.util.ParameterTool;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

import java.io.IOException;
import java.time.Duration;

/**
 * Click Event Count, the job of Flink's Operations Playground, as the Flink
 * peer of flowc's benchmark:
 *
 * <pre>
 * source (datagen | kafka) → Timestamps/Watermarks (200 ms out of order, 5 s idleness)
 *   → keyBy(page) → 15 s tumbling event-time window count → discarding sink
 * </pre>
 *
 * Arguments: --source datagen|kafka, --events N (datagen; 0 or less runs
 * forever), --rate R (datagen events/s over all subtasks; 0: unpaced), --parallelism P, --chaining on|off, --bootstrap.servers,
 * --topic, --checkpoint-interval MS (0: off). The Kafka source reads from
 * the earliest offsets up to the latest ones at start, so the job finishes.
 * Nothing is printed per record.
 */
public class ClickEventCountBench {

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        String sourceKind = params.get("source", "datagen");
        long events = params.getLong("events", 60_000_000L);
        int parallelism = params.getInt("parallelism", 2);
        String chaining = params.get("chaining", "off");
        long checkpointInterval = params.getLong("checkpoint-interval", 0);
        double rate = params.getDouble("rate", 0);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(parallelism);
        env.setMaxParallelism(128);
        if (!isOn(chaining)) {
            env.disableOperatorChaining();
        }
        if (checkpointInterval > 0) {
            env.enableCheckpointing(checkpointInterval);
        }

        DataStream<ClickEvent> clicks;
        if (sourceKind.equals("datagen")) {
            long count = events > 0 ? events : Long.MAX_VALUE;
            DataGeneratorSource<ClickEvent> source = rate > 0
                    ? new DataGeneratorSource<>(new ClickEventGenerator(), count,
                            RateLimiterStrategy.perSecond(rate), TypeInformation.of(ClickEvent.class))
                    : new DataGeneratorSource<>(new ClickEventGenerator(), count, TypeInformation.of(ClickEvent.class));
            clicks = env.fromSource(source, WatermarkStrategy.noWatermarks(), "ClickEvent Source")
                    .uid("click-event-source");
        } else if (sourceKind.equals("kafka")) {
            KafkaSource<ClickEvent> source = KafkaSource.<ClickEvent>builder()
                    .setBootstrapServers(params.get("bootstrap.servers", "localhost:9092"))
                    .setTopics(params.get("topic", "input"))
                    .setGroupId(params.get("group", "click-event-count-bench"))
                    .setStartingOffsets(OffsetsInitializer.earliest())
                    .setBounded(OffsetsInitializer.latest())
                    .setDeserializer(KafkaRecordDeserializationSchema.valueOnly(new ClickEventDeserializationSchema()))
                    .build();
            clicks = env.fromSource(source, WatermarkStrategy.noWatermarks(), "ClickEvent Source")
                    .uid("click-event-source");
        } else {
            throw new IllegalArgumentException("--source must be datagen or kafka, not " + sourceKind);
        }

        clicks.assignTimestampsAndWatermarks(
                        WatermarkStrategy.<ClickEvent>forBoundedOutOfOrderness(Duration.ofMillis(200))
                                .withTimestampAssigner((event, previous) -> event.timestamp)
                                .withIdleness(Duration.ofSeconds(5)))
                .name("Timestamps/Watermarks")
                .uid("timestamps-watermarks")
                .keyBy(event -> event.page)
                .window(TumblingEventTimeWindows.of(Duration.ofSeconds(15)))
                .aggregate(new CountingAggregator(), new ClickEventStatisticsCollector())
                .name("ClickEvent Counter")
                .uid("click-event-counter")
                .sinkTo(new DiscardingSink<>())
                .name("Discarding Sink")
                .uid("discarding-sink");

        env.execute("Click Event Count (" + sourceKind + ", chaining " + (isOn(chaining) ? "on" : "off") + ")");
    }

    private static boolean isOn(String v) {
        return v.equals("on") || v.equals("true") || v.equals("yes");
    }

    /** The i-th click event of the sequence, cheap: one small object per record. */
    public static class ClickEventGenerator implements GeneratorFunction<Long, ClickEvent> {
        @Override
        public ClickEvent map(Long index) {
            return ClickEvents.event(index);
        }
    }

    /** JSON click events from Kafka. */
    public static class ClickEventDeserializationSchema implements DeserializationSchema<ClickEvent> {
        @Override
        public ClickEvent deserialize(byte[] message) throws IOException {
            return ClickEvents.parse(message);
        }

        @Override
        public boolean isEndOfStream(ClickEvent next) {
            return false;
        }

        @Override
        public TypeInformation<ClickEvent> getProducedType() {
            return TypeInformation.of(ClickEvent.class);
        }
    }

    /** Counts the clicks of one page in one window. */
    public static class CountingAggregator implements AggregateFunction<ClickEvent, Long, Long> {
        @Override
        public Long createAccumulator() {
            return 0L;
        }

        @Override
        public Long add(ClickEvent value, Long acc) {
            return acc + 1;
        }

        @Override
        public Long getResult(Long acc) {
            return acc;
        }

        @Override
        public Long merge(Long a, Long b) {
            return a + b;
        }
    }

    /** Adds the window's bounds and the page to the count. */
    public static class ClickEventStatisticsCollector
            extends ProcessWindowFunction<Long, ClickEventStatistics, String, TimeWindow> {
        @Override
        public void process(String page, Context context, Iterable<Long> counts, Collector<ClickEventStatistics> out) {
            long count = counts.iterator().next();
            out.collect(new ClickEventStatistics(context.window().getStart(), context.window().getEnd(), page, count));
        }
    }
}
