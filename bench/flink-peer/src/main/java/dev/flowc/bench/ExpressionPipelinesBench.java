package dev.flowc.bench;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.ParameterTool;

/**
 * The expression-heavy datagen pipelines of flowc's benchmark on the
 * DataStream API, with lambdas doing what the .flow files' expressions do
 * (one chained vertex at parallelism P, Flink's defaults otherwise):
 *
 * <pre>
 * filter-strings     bench/jobs/filter_strings.flow
 *   filter page != "/help" and contains(referrer, "q=")
 * filter-map-select  bench/jobs/filter_map_select.flow
 *   filter user % 10 != 0 and page != "/about"
 *   | map { bucket: user % 16, score: user * 3 + length(page), later: ts + 1s }
 *   | select { page, bucket, score, later }
 * udf                bench/jobs/udf_pipeline.flow (the UDF as a static Java method)
 *   filter page != "/help" | select { page, user, score: score(user, millis(ts)) }
 * </pre>
 *
 * Arguments: --job filter-strings|filter-map-select|udf, --events N,
 * --parallelism P. The records are {@link Visits#visit}: the same as
 * flowc's datagen source and bench/limit make.
 */
public class ExpressionPipelinesBench {

    /** The output of {@code map}: every field of the visit and the three new ones. */
    public static class Mapped {
        public long ts;
        public String page;
        public String referrer;
        public long user;
        public long bucket;
        public long score;
        public long later;

        public Mapped() {}
    }

    /** The output of {@code select { page, bucket, score, later }}. */
    public static class Projected {
        public String page;
        public long bucket;
        public long score;
        public long later;

        public Projected() {}
    }

    /** The output of the UDF pipeline's {@code select { page, user, score }}. */
    public static class Scored {
        public String page;
        public long user;
        public long score;

        public Scored() {}
    }

    /** The i-th visit. */
    public static class VisitGenerator implements GeneratorFunction<Long, Visit> {
        @Override
        public Visit map(Long index) {
            return Visits.visit(index);
        }
    }

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        String job = params.get("job", "filter-strings");
        long events = params.getLong("events", 60_000_000L);
        int parallelism = params.getInt("parallelism", 2);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(parallelism);
        env.setMaxParallelism(128);

        DataStream<Visit> visits = env.fromSource(
                        new DataGeneratorSource<>(new VisitGenerator(), events, TypeInformation.of(Visit.class)),
                        WatermarkStrategy.noWatermarks(), "Visits")
                .uid("visits");

        switch (job) {
            case "filter-strings":
                visits.filter(v -> !v.page.equals("/help") && v.referrer.contains("q="))
                        .name("Searches").uid("searches")
                        .sinkTo(new DiscardingSink<>()).name("Discarding Sink").uid("discarding-sink");
                break;
            case "filter-map-select":
                visits.filter(v -> v.user % 10 != 0 && !v.page.equals("/about"))
                        .name("Known users").uid("known-users")
                        .map(v -> {
                            Mapped m = new Mapped();
                            m.ts = v.ts;
                            m.page = v.page;
                            m.referrer = v.referrer;
                            m.user = v.user;
                            m.bucket = v.user % 16;
                            m.score = v.user * 3 + v.page.codePointCount(0, v.page.length());
                            m.later = v.ts + 1000;
                            return m;
                        })
                        .returns(Mapped.class)
                        .name("Scores").uid("scores")
                        .map(m -> {
                            Projected p = new Projected();
                            p.page = m.page;
                            p.bucket = m.bucket;
                            p.score = m.score;
                            p.later = m.later;
                            return p;
                        })
                        .returns(Projected.class)
                        .name("Projection").uid("projection")
                        .sinkTo(new DiscardingSink<>()).name("Discarding Sink").uid("discarding-sink");
                break;
            case "udf":
                visits.filter(v -> !v.page.equals("/help"))
                        .name("Not help").uid("not-help")
                        .map(v -> {
                            Scored s = new Scored();
                            s.page = v.page;
                            s.user = v.user;
                            s.score = Udfs.score(v.user, v.ts);
                            return s;
                        })
                        .returns(Scored.class)
                        .name("Scores").uid("scores")
                        .sinkTo(new DiscardingSink<>()).name("Discarding Sink").uid("discarding-sink");
                break;
            default:
                throw new IllegalArgumentException("--job must be filter-strings, filter-map-select or udf, not " + job);
        }
        env.execute("Expression pipeline " + job + " (datagen)");
    }
}
