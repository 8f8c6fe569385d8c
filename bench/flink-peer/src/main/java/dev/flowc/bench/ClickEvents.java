package dev.flowc.bench;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * The click events both engines see: 6 pages in turn, the timestamp
 * advancing 15 ms every 6 events from 2026-11-24T22:15:00Z (exactly 1000
 * clicks per page per 15 s window), and their JSON form
 * {"timestamp":"2026-11-24T22:15:00.015Z","page":"/index"}.
 */
public final class ClickEvents {
    public static final String[] PAGES = {"/help", "/index", "/shop", "/jobs", "/about", "/news"};
    /** 2026-11-24T22:15:00Z in epoch milliseconds. */
    public static final long START_MS = 1795558500000L;
    public static final long STEP_MS = 15;

    private static final DateTimeFormatter ISO =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private ClickEvents() {}

    public static long timestampOf(long index) {
        return START_MS + (index / PAGES.length) * STEP_MS;
    }

    public static String pageOf(long index) {
        return PAGES[(int) (index % PAGES.length)];
    }

    public static ClickEvent event(long index) {
        return new ClickEvent(timestampOf(index), pageOf(index));
    }

    public static String json(long index) {
        return "{\"timestamp\":\"" + ISO.format(Instant.ofEpochMilli(timestampOf(index)))
                + "\",\"page\":\"" + pageOf(index) + "\"}";
    }

    /**
     * Parses one JSON click event. A hand-rolled scanner over the bytes for
     * the flat two-field object the generator writes; anything it does not
     * understand throws, so a format change cannot go unnoticed.
     */
    public static ClickEvent parse(byte[] b) {
        long ts = Long.MIN_VALUE;
        String page = null;
        int i = 0, n = b.length;
        while (i < n) {
            // find the next key
            while (i < n && b[i] != '"') i++;
            if (i >= n) break;
            int ks = ++i;
            while (i < n && b[i] != '"') i++;
            int ke = i++;
            while (i < n && (b[i] == ':' || b[i] == ' ')) i++;
            if (i >= n || b[i] != '"') throw new IllegalArgumentException("bad click event: " + new String(b, StandardCharsets.UTF_8));
            int vs = ++i;
            while (i < n && b[i] != '"') {
                if (b[i] == '\\') i++;
                i++;
            }
            int ve = i++;
            if (keyIs(b, ks, ke, "timestamp")) {
                ts = parseIsoMillis(b, vs, ve);
            } else if (keyIs(b, ks, ke, "page")) {
                page = internPage(b, vs, ve);
            }
        }
        if (ts == Long.MIN_VALUE || page == null) {
            throw new IllegalArgumentException("bad click event: " + new String(b, StandardCharsets.UTF_8));
        }
        return new ClickEvent(ts, page);
    }

    private static boolean keyIs(byte[] b, int s, int e, String k) {
        if (e - s != k.length()) return false;
        for (int j = 0; j < k.length(); j++) if (b[s + j] != k.charAt(j)) return false;
        return true;
    }

    private static String internPage(byte[] b, int s, int e) {
        for (String p : PAGES) if (keyIs(b, s, e, p)) return p;
        return new String(b, s, e - s, StandardCharsets.UTF_8);
    }

    private static int digits(byte[] b, int s, int len) {
        int v = 0;
        for (int j = s; j < s + len; j++) {
            int d = b[j] - '0';
            if (d < 0 || d > 9) throw new NumberFormatException();
            v = v * 10 + d;
        }
        return v;
    }

    /** yyyy-MM-ddTHH:mm:ss.SSSZ fast; anything else through Instant.parse. */
    static long parseIsoMillis(byte[] b, int s, int e) {
        if (e - s == 24 && b[s + 4] == '-' && b[s + 7] == '-' && b[s + 10] == 'T' && b[s + 13] == ':'
                && b[s + 16] == ':' && b[s + 19] == '.' && b[s + 23] == 'Z') {
            try {
                int y = digits(b, s, 4), mo = digits(b, s + 5, 2), d = digits(b, s + 8, 2);
                int h = digits(b, s + 11, 2), mi = digits(b, s + 14, 2), sec = digits(b, s + 17, 2);
                int ms = digits(b, s + 20, 3);
                long days = daysFromCivil(y, mo, d);
                return ((days * 24 + h) * 60 + mi) * 60_000L + sec * 1000L + ms;
            } catch (NumberFormatException ignored) {
                // fall through
            }
        }
        return Instant.parse(new String(b, s, e - s, StandardCharsets.US_ASCII)).toEpochMilli();
    }

    /** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
    static long daysFromCivil(int y, int m, int d) {
        y -= m <= 2 ? 1 : 0;
        long era = (y >= 0 ? y : y - 399) / 400;
        long yoe = y - era * 400;
        long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
    }
}
