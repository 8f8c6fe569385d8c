package dev.flowc.bench;

import java.time.Duration;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.co.ProcessJoinFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;
import org.apache.flink.util.ParameterTool;

/**
 * The interval join of flowc's benchmark (issue 12's "Measure") on the
 * DataStream API, Flink's defaults otherwise (hashmap state backend, full
 * checkpoints): bench/jobs/interval_join_datagen.flow,
 *
 * <pre>
 * from clicks | join impressions on imp_id == impressions.imp_id within -10s, 0s
 *   → clicks.keyBy(impId).intervalJoin(impressions.keyBy(impId))
 *       .between(Duration.ofSeconds(-10), Duration.ZERO).process(…)
 * </pre>
 *
 * Impression i has {@code imp_id = i}, event time {@code START + i} ms and
 * {@code campaign = i % 100}; click i has {@code click_id = imp_id = i} and
 * event time {@code START + i + (i % 11) * 1000} ms: 0 to 10 s after its
 * impression, so each click meets exactly its impression, and the clicks
 * are out of order by up to 10 s (their watermark allows 10 s; the
 * impressions' none). As flowc's datagen, subtask k of p makes records k,
 * k + p, … Arguments: --events N (per side), --parallelism P,
 * --checkpoint-interval MS; or --dump N, which prints records 0..N of both
 * sides (one a line, {@code impression ID TS CAMPAIGN}, {@code click ID
 * IMP_ID TS}) without running a job, for the harness to compare with
 * flowc's.
 */
public class IntervalJoinBench {

    static final long START_MS = 1_795_558_500_000L;
    static final Duration WITHIN = Duration.ofSeconds(10);

    /** An impression: its id, event time, campaign. */
    public static class Impression {
        public long impId;
        public long ts;
        public long campaign;

        public Impression() {}
    }

    /** A click on an impression. */
    public static class Click {
        public long clickId;
        public long impId;
        public long ts;

        public Click() {}
    }

    /** A joined row, as flowc's select writes it. */
    public static class Joined {
        public long clickId;
        public long impId;
        public long campaign;
        public long clickTs;
        public long impTs;

        public Joined() {}
    }

    static Impression impression(long i) {
        Impression m = new Impression();
        m.impId = i;
        m.ts = START_MS + i;
        m.campaign = i % 100;
        return m;
    }

    static Click click(long i) {
        Click c = new Click();
        c.clickId = i;
        c.impId = i;
        c.ts = START_MS + i + (i % 11) * 1000;
        return c;
    }

    /** Record i of flowc's numbering, from each subtask's own count. */
    abstract static class Numbered<T> implements GeneratorFunction<Long, T> {
        private long next;
        private long step;

        @Override
        public void open(SourceReaderContext context) {
            next = context.getIndexOfSubtask();
            step = context.currentParallelism();
        }

        @Override
        public T map(Long ignored) {
            long i = next;
            next += step;
            return make(i);
        }

        abstract T make(long i);
    }

    static class Impressions extends Numbered<Impression> {
        @Override
        Impression make(long i) {
            return impression(i);
        }
    }

    static class Clicks extends Numbered<Click> {
        @Override
        Click make(long i) {
            return click(i);
        }
    }

    /** A click with its impression. */
    public static class Pair extends ProcessJoinFunction<Click, Impression, Joined> {
        @Override
        public void processElement(Click c, Impression m, Context ctx, Collector<Joined> out) {
            Joined j = new Joined();
            j.clickId = c.clickId;
            j.impId = c.impId;
            j.campaign = m.campaign;
            j.clickTs = c.ts;
            j.impTs = m.ts;
            out.collect(j);
        }
    }

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        if (params.has("dump")) {
            long n = params.getLong("dump");
            StringBuilder out = new StringBuilder();
            for (long i = 0; i < n; i++) {
                Impression m = impression(i);
                Click c = click(i);
                out.append("impression ").append(m.impId).append(' ').append(m.ts).append(' ')
                        .append(m.campaign).append('\n');
                out.append("click ").append(c.clickId).append(' ').append(c.impId).append(' ')
                        .append(c.ts).append('\n');
            }
            System.out.print(out);
            return;
        }
        long events = params.getLong("events", 10_000_000L);
        int parallelism = params.getInt("parallelism", 2);
        long checkpointInterval = params.getLong("checkpoint-interval", 1000);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(parallelism);
        env.setMaxParallelism(128);
        if (checkpointInterval > 0) {
            env.enableCheckpointing(checkpointInterval);
        }
        DataStream<Impression> impressions = env.fromSource(
                        new DataGeneratorSource<>(new Impressions(), events, TypeInformation.of(Impression.class)),
                        WatermarkStrategy.noWatermarks(), "Impressions")
                .uid("impressions")
                .assignTimestampsAndWatermarks(
                        WatermarkStrategy.<Impression>forBoundedOutOfOrderness(Duration.ZERO)
                                .withTimestampAssigner((m, previous) -> m.ts))
                .name("Impression Watermarks").uid("impression-watermarks");
        DataStream<Click> clicks = env.fromSource(
                        new DataGeneratorSource<>(new Clicks(), events, TypeInformation.of(Click.class)),
                        WatermarkStrategy.noWatermarks(), "Clicks")
                .uid("clicks")
                .assignTimestampsAndWatermarks(
                        WatermarkStrategy.<Click>forBoundedOutOfOrderness(WITHIN)
                                .withTimestampAssigner((c, previous) -> c.ts))
                .name("Click Watermarks").uid("click-watermarks");
        clicks.keyBy(c -> c.impId)
                .intervalJoin(impressions.keyBy(m -> m.impId))
                .between(WITHIN.negated(), Duration.ZERO)
                .process(new Pair())
                .name("Interval Join").uid("join")
                .sinkTo(new DiscardingSink<>()).name("Discarding Sink").uid("discarding-sink");
        env.execute("Interval join (datagen, " + events + " events a side)");
    }
}
