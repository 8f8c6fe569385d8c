package dev.flowc.bench;

import java.time.Duration;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.EventTimeSessionWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;
import org.apache.flink.util.ParameterTool;

/**
 * The keyed-state jobs of flowc's benchmark (issue 11's "Measure") on the
 * DataStream API, Flink's defaults otherwise (hashmap state backend, full
 * checkpoints):
 *
 * <pre>
 * sessions  bench/jobs/sessions_datagen.flow
 *   key_by user | window session { gap: 30s }
 *   | aggregate { user, start: window_start(), end: window_end(), clicks: count() }
 *   → keyBy(user).window(EventTimeSessionWindows.withGap(30 s)).aggregate(count, with the window)
 * running   bench/jobs/running_datagen.flow
 *   key_by user | aggregate { user, purchases: count(), total: sum(amount), largest: max(amount) }
 *   → keyBy(user).reduce(…): one ValueState per key, the new totals out per record
 * </pre>
 *
 * Record i is user {@code i % keys}; in {@code sessions} at second
 * {@code i / keys} of event time (every key has an event each second, so
 * its session stays open), in {@code running} with amount {@code i % 100}.
 * As flowc's datagen, subtask k of p makes records k, k + p, … (Flink's
 * generator would give each subtask a contiguous range, whose event times
 * would start apart). Arguments: --job sessions|running, --events N,
 * --keys K, --parallelism P, --checkpoint-interval MS.
 */
public class KeyedStateBench {

    static final long START_MS = 1_795_558_500_000L;
    static final Duration GAP = Duration.ofSeconds(30);

    /** One input record: a user, an event time, an amount. */
    public static class Event {
        public long user;
        public long ts;
        public long amount;

        public Event() {}
    }

    /** A session's output row, as flowc's aggregate writes it. */
    public static class Session {
        public long user;
        public long start;
        public long end;
        public long clicks;

        public Session() {}
    }

    /** A user's running totals. */
    public static class Totals {
        public long user;
        public long purchases;
        public long total;
        public long largest;

        public Totals() {}
    }

    /** Record i of flowc's numbering, from each subtask's own count. */
    public static class EventGenerator implements GeneratorFunction<Long, Event> {
        private final long keys;
        private long next;
        private long step;

        EventGenerator(long keys) {
            this.keys = keys;
        }

        @Override
        public void open(SourceReaderContext context) {
            next = context.getIndexOfSubtask();
            step = context.currentParallelism();
        }

        @Override
        public Event map(Long ignored) {
            long i = next;
            next += step;
            Event e = new Event();
            e.user = i % keys;
            e.ts = START_MS + (i / keys) * 1000;
            e.amount = i % 100;
            return e;
        }
    }

    /** {@code count()} of a session. */
    public static class Count implements AggregateFunction<Event, Long, Long> {
        @Override
        public Long createAccumulator() {
            return 0L;
        }

        @Override
        public Long add(Event value, Long acc) {
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

    /** The session's row: its key, bounds and count. */
    public static class SessionRow extends ProcessWindowFunction<Long, Session, Long, TimeWindow> {
        @Override
        public void process(Long user, Context context, Iterable<Long> counts, Collector<Session> out) {
            Session s = new Session();
            s.user = user;
            s.start = context.window().getStart();
            s.end = context.window().getEnd();
            s.clicks = counts.iterator().next();
            out.collect(s);
        }
    }

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        String job = params.get("job", "sessions");
        long events = params.getLong("events", 20_000_000L);
        long keys = params.getLong("keys", 100_000L);
        int parallelism = params.getInt("parallelism", 2);
        long checkpointInterval = params.getLong("checkpoint-interval", 1000);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(parallelism);
        env.setMaxParallelism(128);
        if (checkpointInterval > 0) {
            env.enableCheckpointing(checkpointInterval);
        }
        DataStream<Event> input = env.fromSource(
                        new DataGeneratorSource<>(new EventGenerator(keys), events, TypeInformation.of(Event.class)),
                        WatermarkStrategy.noWatermarks(), "Events")
                .uid("events");

        switch (job) {
            case "sessions":
                input.assignTimestampsAndWatermarks(
                                WatermarkStrategy.<Event>forBoundedOutOfOrderness(Duration.ZERO)
                                        .withTimestampAssigner((e, previous) -> e.ts))
                        .name("Timestamps/Watermarks").uid("watermarks")
                        .keyBy(e -> e.user)
                        .window(EventTimeSessionWindows.withGap(GAP))
                        .aggregate(new Count(), new SessionRow())
                        .name("Sessions").uid("sessions")
                        .sinkTo(new DiscardingSink<>()).name("Discarding Sink").uid("discarding-sink");
                break;
            case "running":
                input.map(e -> {
                            Totals t = new Totals();
                            t.user = e.user;
                            t.purchases = 1;
                            t.total = e.amount;
                            t.largest = e.amount;
                            return t;
                        })
                        .returns(Totals.class)
                        .name("Purchases").uid("purchases")
                        .keyBy(t -> t.user)
                        .reduce((a, b) -> {
                            Totals t = new Totals();
                            t.user = a.user;
                            t.purchases = a.purchases + b.purchases;
                            t.total = a.total + b.total;
                            t.largest = Math.max(a.largest, b.largest);
                            return t;
                        })
                        .name("Totals").uid("totals")
                        .sinkTo(new DiscardingSink<>()).name("Discarding Sink").uid("discarding-sink");
                break;
            default:
                throw new IllegalArgumentException("--job must be sessions or running, not " + job);
        }
        env.execute("Keyed state " + job + " (datagen, " + keys + " keys)");
    }
}
