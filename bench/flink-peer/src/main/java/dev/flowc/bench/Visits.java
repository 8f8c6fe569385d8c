package dev.flowc.bench;

/**
 * The generated visits, exactly as flowc's datagen source makes them for
 * bench/jobs/filter_strings.flow, filter_map_select.flow and
 * udf_pipeline.flow (and bench/limit/src/gen.rs): record i has
 * {@code ts: ticks(1795558500000, 15, 6)}, {@code page: cycle(6 pages)},
 * {@code referrer: cycle(5 referrers)}, {@code user: random(1, 100000)}.
 */
public final class Visits {
    public static final String[] PAGES = ClickEvents.PAGES;
    public static final String[] REFERRERS = {
        "https://www.google.com/search?q=flink",
        "https://news.ycombinator.com/",
        "direct",
        "https://duckduckgo.com/?q=streaming",
        "https://example.org/blog/flink",
    };

    private Visits() {}

    /** flowc's datagen {@code random}: splitmix64 of the record index. */
    static long splitmix(long i) {
        long z = i + 0x9e3779b97f4a7c15L;
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /** {@code random(min, max)} of record i (span below 2^63). */
    static long random(long min, long max, long i) {
        return min + Long.remainderUnsigned(splitmix(i), max - min + 1);
    }

    public static Visit visit(long i) {
        return new Visit(ClickEvents.timestampOf(i), PAGES[(int) (i % PAGES.length)],
                REFERRERS[(int) (i % REFERRERS.length)], random(1, 100_000, i));
    }
}
