package dev.flowc.bench;

/**
 * The functions of bench/jobs/udfs/visits.rs, the same arithmetic in Java:
 * the Flink peer of the UDF pipeline calls them as plain static methods.
 */
public final class Udfs {
    private Udfs() {}

    /** {@code score(user, at_ms)}: a mix of the user and the minute of the visit, in 0..1000. */
    public static long score(long user, long atMs) {
        long z = user ^ Long.rotateLeft(atMs / 60_000, 32);
        z = (z ^ (z >>> 33)) * 0xff51afd7ed558ccdL;
        z ^= z >>> 33;
        return Long.remainderUnsigned(z, 1000);
    }
}
