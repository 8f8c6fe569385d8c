"""The Apache Flink 2.3 side: a standalone session cluster (one JobManager,
one TaskManager) started as plain `java -cp` processes from the jars of the
apache-flink-libraries wheel, and the flink-peer job submitted over REST."""

import os
import shutil
import subprocess
import time

from .cluster import RestCluster, Unavailable, JobFailed
from .procs import free_port, http, multipart_file, log

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLINK_VERSION = "2.3.0"


def cache_dir():
    return os.environ.get("FLOWC_BENCH_CACHE", os.path.join(BENCH, ".cache"))


def flink_home():
    return os.path.join(cache_dir(), "pyflink", "pyflink")


def peer_jar():
    return os.path.join(BENCH, "flink-peer", "target", "flink-peer-0.1.0.jar")


def peer_jar_stale():
    """Whether a source of the Flink peer (or its pom) changed after its jar
    was built: a stale jar lacks the newer jobs' classes."""
    peer = os.path.join(BENCH, "flink-peer")
    built = os.path.getmtime(peer_jar())
    sources = [os.path.join(peer, "pom.xml")]
    for root, _, files in os.walk(os.path.join(peer, "src")):
        sources.extend(os.path.join(root, f) for f in files)
    return any(os.path.getmtime(f) > built for f in sources)


# Flink's own env.java.opts.all default (the config.yaml packaged in flink-dist).
JAVA_OPTS = ("--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED "
             "--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED "
             "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED "
             "--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED "
             "--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED "
             "--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED "
             "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED "
             "--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED "
             "--add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED "
             "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED "
             "--add-opens=java.base/java.text=ALL-UNNAMED --add-opens=java.base/java.time=ALL-UNNAMED "
             "--add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED "
             "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED "
             "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED").split()

LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
appender.main.name = MainAppender
appender.main.type = File
appender.main.fileName = ${sys:log.file}
appender.main.append = true
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
logger.pekko.name = org.apache.pekko
logger.pekko.level = INFO
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
"""


def java():
    jh = os.environ.get("JAVA_HOME")
    return os.path.join(jh, "bin", "java") if jh else (shutil.which("java") or "java")


class FlinkCluster(RestCluster):
    name = "Flink"
    # Keys a kind of run sets differently (a subclass's), over the defaults above.
    conf_overrides = {}

    def __init__(self, procs, workdir, slots=2):
        super().__init__(procs, workdir)
        self.slots = slots
        home = flink_home()
        lib = os.path.join(home, "lib")
        if not os.path.isdir(lib):
            raise Unavailable(f"no Flink at {home}: run bench/setup.sh")
        if not os.path.isfile(peer_jar()):
            raise Unavailable(f"no {peer_jar()}: run bench/setup.sh")
        if peer_jar_stale():
            raise Unavailable(f"{peer_jar()} is older than bench/flink-peer's sources: run bench/setup.sh")
        jars = sorted(os.listdir(lib))
        dist = [j for j in jars if j.startswith("flink-dist")]
        # As Flink's config.sh: every lib jar, flink-dist last.
        self.classpath = ":".join([os.path.join(lib, j) for j in jars if j.endswith(".jar") and j not in dist]
                                  + [os.path.join(lib, j) for j in dist])
        self.utils_cp = os.path.join(home, "bin", "bash-java-utils.jar") + ":" + os.path.join(lib, dist[0])
        self.jar_id = None
        self.tm_count = 0

    def write_conf(self):
        self.rest_port = free_port()
        self.rpc_port = free_port()
        self.conf = os.path.join(self.workdir, "conf")
        os.makedirs(self.conf, exist_ok=True)
        tmp = os.path.join(self.workdir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        cfg = {
            "env.java.opts.all": " ".join(JAVA_OPTS),
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": self.rpc_port,
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.memory.process.size": "1024m",
            "jobmanager.execution.failover-strategy": "region",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.host": "127.0.0.1",
            "taskmanager.numberOfTaskSlots": self.slots,
            "taskmanager.memory.process.size": "1728m",
            "taskmanager.rpc.port": "0",
            "taskmanager.data.port": "0",
            "blob.server.port": "0",
            "parallelism.default": self.slots,
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": self.rest_port,
            "heartbeat.interval": 1000,
            "heartbeat.timeout": 5000,
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": 1000,
            "restart-strategy.fixed-delay.delay": "1 s",
            "io.tmp.dirs": tmp,
            "web.tmpdir": tmp,
            "state.checkpoints.dir": "file://" + os.path.join(self.workdir, "checkpoints"),
        }
        cfg.update(self.conf_overrides)
        with open(os.path.join(self.conf, "config.yaml"), "w") as f:
            for k, v in cfg.items():
                f.write(f"{k}: {v}\n")
        with open(os.path.join(self.conf, "log4j.properties"), "w") as f:
            f.write(LOG4J)
        self.jm_jvm, self.jm_dyn = self._resource_params("GET_JM_RESOURCE_PARAMS")
        self.tm_jvm, self.tm_dyn = self._resource_params("GET_TM_RESOURCE_PARAMS")

    def _resource_params(self, cmd):
        """The memory flags Flink's scripts compute with BashJavaUtils."""
        out = subprocess.run([java(), "-cp", self.utils_cp, "org.apache.flink.runtime.util.bash.BashJavaUtils",
                              cmd, "--configDir", self.conf], capture_output=True, text=True, timeout=120)
        res = [l.split(":", 1)[1] for l in out.stdout.splitlines() if l.startswith("BASH_JAVA_UTILS_EXEC_RESULT:")]
        if len(res) < 2:
            raise JobFailed(f"BashJavaUtils {cmd} failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")
        return res[0].split(), res[1].split()

    def _argv(self, role, jvm, main, dyn):
        logf = os.path.join(self.workdir, f"{role}.log")
        return [java(), *jvm, *JAVA_OPTS,
                f"-Dlog.file={logf}",
                f"-Dlog4j.configurationFile=file:{os.path.join(self.conf, 'log4j.properties')}",
                "-classpath", self.classpath, main, "--configDir", self.conf, *dyn]

    def start(self):
        """Starts JobManager and TaskManager; returns the seconds from starting
        the processes until the TaskManager is registered with its slots free."""
        self.write_conf()
        t0 = time.monotonic()
        self.jm = self.procs.start(self._argv("jobmanager", self.jm_jvm,
                                              "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
                                              self.jm_dyn),
                                   os.path.join(self.workdir, "jobmanager.out"))
        self.start_taskmanager()
        return self.wait_slots(1, since=t0)

    def start_taskmanager(self):
        self.tm_count += 1
        p = self.procs.start(self._argv(f"taskmanager-{self.tm_count}", self.tm_jvm,
                                        "org.apache.flink.runtime.taskexecutor.TaskManagerRunner", self.tm_dyn),
                             os.path.join(self.workdir, f"taskmanager-{self.tm_count}.out"))
        self.tms.append(p)
        return p

    def _upload(self):
        if self.jar_id is None:
            body, headers = multipart_file("jarfile", peer_jar())
            st, r = http("POST", self.url + "/jars/upload", body, headers, timeout=120)
            if st != 200 or not isinstance(r, dict) or r.get("status") != "success":
                raise JobFailed(f"Flink: jar upload failed: {st} {r}")
            self.jar_id = os.path.basename(r["filename"])
        return self.jar_id

    def submit(self, args, parallelism=2, entry_class=None):
        jar = self._upload()
        body = {"programArgsList": args, "parallelism": parallelism}
        if entry_class:
            body["entryClass"] = entry_class
        st, r = http("POST", f"{self.url}/jars/{jar}/run", body, timeout=120)
        if st != 200 or not isinstance(r, dict) or "jobid" not in r:
            raise JobFailed(f"Flink: job submission failed: {st} {r}")
        return r["jobid"]

    def submit_core(self, events, chaining, parallelism=2):
        return self.submit(["--source", "datagen", "--events", str(events), "--parallelism", str(parallelism),
                            "--chaining", "on" if chaining else "off"], parallelism)

    def submit_kafka(self, servers, topic, parallelism=2):
        return self.submit(["--source", "kafka", "--bootstrap.servers", servers, "--topic", topic,
                            "--group", f"flink-bench-{time.time_ns()}",
                            "--parallelism", str(parallelism), "--chaining", "off"], parallelism)

    def submit_pipeline(self, job, events, parallelism=2):
        """An expression-heavy pipeline (bench/limit's job name) of the peer's
        ExpressionPipelinesBench."""
        return self.submit(["--job", job, "--events", str(events), "--parallelism", str(parallelism)],
                           parallelism, entry_class="dev.flowc.bench.ExpressionPipelinesBench")

    def submit_long(self, rate, parallelism=2):
        """A job that runs until cancelled (for the recovery measurement)."""
        return self.submit(["--source", "datagen", "--events", "0", "--rate", str(rate),
                            "--checkpoint-interval", "1000", "--parallelism", str(parallelism),
                            "--chaining", "off"], parallelism)

    def cancel(self, job_id):
        http("PATCH", f"{self.url}/jobs/{job_id}?mode=cancel", timeout=10)
