// Runs Nexmark queries on Apache Flink's SQL engine over the JSON lines of
// `flowc nexmark-gen` and writes each query's result as sorted JSON lines:
// for an updating query, the final table after applying its changelog
// (by the upsert key for a query whose file declares one: q9).
// Used by regen.sh; compiled with javac against Flink's lib/*.jar.
//
// Usage: java NexmarkGolden DATA_DIR SQL_DIR OUT_DIR q0 q1 …

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.apache.flink.util.CloseableIterator;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

public class NexmarkGolden {

    /** Nexmark's count_char UDF (com.github.nexmark.flink.udf.CountChar). */
    public static class CountChar extends ScalarFunction {
        public long eval(String s, String c) {
            if (s == null || c == null || c.isEmpty()) {
                return 0;
            }
            char ch = c.charAt(0);
            long n = 0;
            for (int i = 0; i < s.length(); i++) {
                if (s.charAt(i) == ch) {
                    n++;
                }
            }
            return n;
        }
    }

    static final DateTimeFormatter ISO = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'");

    static String ddl(String name, String columns, Path data) {
        return "CREATE TABLE " + name + " (" + columns
                + ", WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND) WITH ("
                + "'connector' = 'filesystem', 'path' = '" + data.resolve(name).toUri() + "', 'format' = 'json'"
                + monitor() + ")";
    }

    /** The benchmark's state-size run reads the files and keeps watching the
     *  directory (`-Dnexmark.monitor-interval=1s`), so that the job holds its
     *  state after the last event instead of ending: flowc's `watch`. */
    static String monitor() {
        String every = System.getProperty("nexmark.monitor-interval");
        return every == null ? "" : ", 'source.monitor-interval' = '" + every + "'";
    }

    /** The tables person, auction and bid over DATA_DIR/<kind>/, side_input over
     *  DATA_DIR/side_input.txt (q13's bounded side input, a lookup source), and count_char. */
    static void createTables(TableEnvironment t, Path data) {
        t.executeSql(ddl("person", "id BIGINT, name STRING, emailAddress STRING, creditCard STRING, "
                + "city STRING, state STRING, `dateTime` TIMESTAMP(3), extra STRING", data));
        t.executeSql(ddl("auction", "id BIGINT, itemName STRING, description STRING, initialBid BIGINT, "
                + "reserve BIGINT, `dateTime` TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, "
                + "category BIGINT, extra STRING", data));
        t.executeSql(ddl("bid", "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, "
                + "`dateTime` TIMESTAMP(3), extra STRING", data));
        t.executeSql("CREATE TABLE side_input (key BIGINT, `value` STRING) WITH ('connector' = 'filesystem', "
                + "'path' = '" + data.resolve("side_input.txt").toUri() + "', 'format' = 'csv')");
        t.createTemporarySystemFunction("count_char", CountChar.class);
    }

    public static void main(String[] args) throws Exception {
        Path data = Path.of(args[0]).toAbsolutePath();
        Path sqlDir = Path.of(args[1]);
        Path out = Path.of(args[2]);
        Files.createDirectories(out);
        for (int i = 3; i < args.length; i++) {
            String q = args[i];
            String text = Files.readString(sqlDir.resolve(q + ".sql"), StandardCharsets.UTF_8);
            String sql = text.replaceAll("(?m)^--.*$", "");
            TableEnvironment t = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
            t.getConfig().set("parallelism.default", "1");
            t.getConfig().set("table.local-time-zone", "UTC");
            createTables(t, data);
            TableResult r = t.executeSql(sql);
            List<String> names = r.getResolvedSchema().getColumnNames();
            // The final table: each row with how many times it is in it.
            Map<String, Integer> table = new TreeMap<>();
            // A query that declares its upsert key (`-- upsert key: a, b`):
            // each row replaces its key's row, whatever the kinds say.
            List<Integer> upsertKey = upsertKey(text, names);
            Map<String, String> byKey = new TreeMap<>();
            // How many changes of each kind (+I, -U, +U, -D) the query emitted.
            Map<RowKind, Long> kinds = new EnumMap<>(RowKind.class);
            try (CloseableIterator<Row> it = r.collect()) {
                while (it.hasNext()) {
                    Row row = it.next();
                    String line = json(row, names);
                    kinds.merge(row.getKind(), 1L, Long::sum);
                    if (upsertKey != null) {
                        String key = json(row, names, upsertKey);
                        switch (row.getKind()) {
                            case INSERT, UPDATE_AFTER -> byKey.put(key, line);
                            case UPDATE_BEFORE, DELETE -> byKey.remove(key);
                        }
                        continue;
                    }
                    int d = switch (row.getKind()) {
                        case INSERT, UPDATE_AFTER -> 1;
                        case UPDATE_BEFORE, DELETE -> -1;
                    };
                    table.merge(line, d, Integer::sum);
                }
            }
            for (String line : byKey.values()) {
                table.merge(line, 1, Integer::sum);
            }
            List<String> lines = new ArrayList<>();
            for (Map.Entry<String, Integer> e : table.entrySet()) {
                if (e.getValue() < 0) {
                    throw new IllegalStateException(q + ": a row retracted more often than inserted: " + e.getKey());
                }
                lines.addAll(Collections.nCopies(e.getValue(), e.getKey()));
            }
            Files.write(out.resolve(q + ".jsonl"), lines, StandardCharsets.UTF_8);
            StringBuilder changes = new StringBuilder();
            for (Map.Entry<RowKind, Long> e : kinds.entrySet()) {
                changes.append(changes.length() == 0 ? "" : ", ").append(e.getKey().shortString()).append(' ').append(e.getValue());
            }
            System.out.println(q + ": " + lines.size() + " rows (changes: " + changes + ")");
        }
    }

    /**
     * The columns of the upsert key a query's file declares in a line
     * `-- upsert key: a, b`; null if it declares none. Flink 2.3 plans a
     * top-1 ordered by other than a time attribute as an insert-only
     * deduplication (FLINK-40368): its rank operator then sends each new
     * best row as +U without the -U of the row it replaces, so only the
     * key says which row that was.
     */
    static List<Integer> upsertKey(String text, List<String> names) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^-- upsert key: (.+)$").matcher(text);
        if (!m.find()) {
            return null;
        }
        List<Integer> key = new ArrayList<>();
        for (String c : m.group(1).split(",")) {
            int i = names.indexOf(c.trim());
            if (i < 0) {
                throw new IllegalArgumentException("upsert key column " + c.trim() + " is not among " + names);
            }
            key.add(i);
        }
        return key;
    }

    static String json(Row row, List<String> names) {
        List<Integer> all = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            all.add(i);
        }
        return json(row, names, all);
    }

    /** The columns `columns` of a row as a JSON object. */
    static String json(Row row, List<String> names, List<Integer> columns) {
        StringBuilder b = new StringBuilder("{");
        for (int i : columns) {
            if (b.length() > 1) {
                b.append(',');
            }
            string(b, names.get(i));
            b.append(':');
            Object v = row.getField(i);
            if (v == null) {
                b.append("null");
            } else if (v instanceof String s) {
                string(b, s);
            } else if (v instanceof BigDecimal d) {
                b.append(d.toPlainString());
            } else if (v instanceof LocalDateTime t) {
                string(b, t.format(ISO));
            } else if (v instanceof Instant t) {
                string(b, LocalDateTime.ofInstant(t, ZoneOffset.UTC).format(ISO));
            } else {
                b.append(v);
            }
        }
        return b.append('}').toString();
    }

    static void string(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        b.append('"');
    }
}
