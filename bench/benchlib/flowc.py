"""The flowc side, driven only through flowc's command line:

    flowc jobmanager --config FILE -D rest.port=P -D jobmanager.rpc.port=R
    flowc taskmanager --config FILE -D rest.port=P -D jobmanager.rpc.port=R
    flowc run -d -p 2 -m 127.0.0.1:P JOB.flow [args]   → "Job has been submitted with JobID <id>"
    flowc compile JOB.flow -o PLAN                     (builds a job's Rust UDFs ahead of the runs)

and its Flink-compatible REST API (/overview, /jobs/:id)."""

import os
import re
import subprocess
import time

from .cluster import RestCluster, Unavailable, JobFailed
from .procs import free_port, http, log

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH)
JOBS = os.path.join(BENCH, "jobs")
REQUIRED = ("jobmanager", "taskmanager", "run")


def flowc_bin():
    return os.environ.get("FLOWC_BIN") or os.path.join(ROOT, "target", "release", "flowc")


def check_available():
    """Raises Unavailable with the reason when the flowc side cannot run."""
    b = flowc_bin()
    if not os.path.isfile(b) or not os.access(b, os.X_OK):
        raise Unavailable(f"no flowc binary at {b} (build it with `cargo build --release` or set FLOWC_BIN)")
    try:
        out = subprocess.run([b, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"{b} --help failed: {e}")
    commands = set()
    in_cmds = False
    for line in out.stdout.splitlines():
        if line.strip().lower().startswith("commands:"):
            in_cmds = True
            continue
        if in_cmds:
            if not line.strip() or not line.startswith(" "):
                in_cmds = False
                continue
            commands.add(line.split()[0])
    missing = [c for c in REQUIRED if c not in commands]
    if missing:
        raise Unavailable(f"{b} lacks the subcommand{'s' if len(missing) > 1 else ''} "
                          + ", ".join(f"`{c}`" for c in missing))
    return b


def prebuild_udfs(job_file, workdir, timeout=1800):
    """Builds the Rust UDFs of `job_file` (cargo, release; cached by content
    hash) before anything is timed; returns the seconds it took (a second
    build of the same code is free)."""
    t0 = time.monotonic()
    out = subprocess.run([check_available(), "compile", os.path.join(JOBS, job_file), "-o",
                          os.path.join(workdir, os.path.splitext(job_file)[0] + ".plan")],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise JobFailed(f"flowc compile {job_file} failed ({out.returncode}): {out.stderr[-1500:]}")
    return time.monotonic() - t0


class FlowcCluster(RestCluster):
    name = "flowc"

    def __init__(self, procs, workdir, slots=2):
        super().__init__(procs, workdir)
        self.slots = slots
        self.bin = check_available()
        self.tm_count = 0

    def write_conf(self):
        self.rest_port = free_port()
        self.rpc_port = free_port()
        self.config = os.path.join(self.workdir, "config.yaml")
        cfg = {
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": self.rpc_port,
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": self.rest_port,
            "taskmanager.bind-address": "127.0.0.1",
            "taskmanager.numberOfTaskSlots": self.slots,
            "parallelism.default": self.slots,
            # as the Flink side's: restart after 1 s, (almost) without limit
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": 1000,
            "restart-strategy.fixed-delay.delay": 1000,
            "web.upload.dir": os.path.join(self.workdir, "upload"),
            "heartbeat.interval": 1000,
            "heartbeat.timeout": 5000,
            "state.checkpoints.dir": os.path.join(self.workdir, "checkpoints"),
            "state.savepoints.dir": os.path.join(self.workdir, "savepoints"),
        }
        with open(self.config, "w") as f:
            for k, v in cfg.items():
                f.write(f"{k}: {v}\n")

    def _dyn(self):
        return ["-D", f"rest.port={self.rest_port}", "-D", f"jobmanager.rpc.port={self.rpc_port}"]

    def start(self):
        self.write_conf()
        t0 = time.monotonic()
        self.jm = self.procs.start([self.bin, "jobmanager", "--config", self.config, *self._dyn()],
                                   os.path.join(self.workdir, "jobmanager.log"))
        self.start_taskmanager()
        return self.wait_slots(1, since=t0)

    def start_taskmanager(self):
        self.tm_count += 1
        p = self.procs.start([self.bin, "taskmanager", "--config", self.config, *self._dyn()],
                             os.path.join(self.workdir, f"taskmanager-{self.tm_count}.log"))
        self.tms.append(p)
        return p

    def submit(self, job_file, args, parallelism=2, timeout=120):
        argv = [self.bin, "run", "-d", "-p", str(parallelism), "-m", f"127.0.0.1:{self.rest_port}",
                os.path.join(JOBS, job_file), *args]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        m = re.search(r"JobID\s+([0-9a-fA-F]{32})", out.stdout + out.stderr)
        if out.returncode != 0 or not m:
            raise JobFailed(f"flowc run failed ({out.returncode}): {out.stdout[-1500:]} {out.stderr[-1500:]}")
        return m.group(1)

    def submit_core(self, events, chaining, parallelism=2):
        job = "click_count_datagen_chained.flow" if chaining else "click_count_datagen.flow"
        return self.submit(job, ["--events", str(events)], parallelism)

    def submit_kafka(self, servers, topic, parallelism=2):
        return self.submit("click_count_kafka.flow",
                           ["--bootstrap.servers", servers, "--topic", topic,
                            "--group", f"flowc-bench-{time.time_ns()}"], parallelism)

    def submit_pipeline(self, job_file, events, parallelism=2):
        # A job with a Rust UDF is built by `flowc run` (cached after the first time).
        return self.submit(job_file, ["--events", str(events)], parallelism, timeout=1800)

    def submit_long(self, rate, parallelism=2):
        return self.submit("click_count_datagen.flow",
                           ["--events", str(10 ** 15), "--rate", str(rate), "--checkpointing"], parallelism)

    def cancel(self, job_id):
        http("PATCH", f"{self.url}/jobs/{job_id}?mode=cancel", timeout=10)
