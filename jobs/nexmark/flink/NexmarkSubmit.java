// Submits one Nexmark query to a running Flink cluster for the benchmark
// (bench/benchlib/nexmark.py): the query's SELECT (qN.sql) over the JSON
// files of `flowc nexmark-gen`, into a blackhole sink, as Nexmark's Flink
// queries do. Prints "JobID <id>" and returns without waiting for the job.
//
// Usage: java [-Dnexmark.checkpoint-interval=MS -Dnexmark.monitor-interval=1s] \
//        NexmarkSubmit HOST:PORT DATA_DIR SQL_FILE PARALLELISM [UDF_JAR]

import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableDescriptor;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

public class NexmarkSubmit {
    public static void main(String[] args) throws Exception {
        String[] rest = args[0].split(":");
        Path data = Path.of(args[1]).toAbsolutePath();
        String sql = Files.readString(Path.of(args[2]), StandardCharsets.UTF_8);
        Map<String, String> conf = new HashMap<>();
        conf.put("execution.target", "remote");
        conf.put("rest.address", rest[0]);
        conf.put("rest.port", rest[1]);
        conf.put("parallelism.default", args[3]);
        conf.put("table.local-time-zone", "UTC");
        // The benchmark's state-size run: a checkpoint this often (ms).
        String checkpoints = System.getProperty("nexmark.checkpoint-interval");
        if (checkpoints != null) {
            conf.put("execution.checkpointing.interval", checkpoints + " ms");
        }
        if (args.length > 4) {
            conf.put("pipeline.jars", Path.of(args[4]).toAbsolutePath().toUri().toString());
        }
        TableEnvironment t = TableEnvironment.create(EnvironmentSettings.newInstance()
                .inStreamingMode()
                .withConfiguration(Configuration.fromMap(conf))
                .build());
        NexmarkGolden.createTables(t, data);
        TableResult r = t.sqlQuery(sql.replaceAll("(?m)^--.*$", "")).executeInsert(
                TableDescriptor.forConnector("blackhole").build());
        System.out.println("JobID " + r.getJobClient().orElseThrow().getJobID());
    }
}
