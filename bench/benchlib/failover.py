"""JobManager failover (`--only failover`): on one ZooKeeper
(`playground/zookeeper/zookeeper.sh`), each engine runs a session cluster
of two JobManagers with ZooKeeper high availability and one TaskManager;
the click job with checkpoints runs, the leading JobManager gets SIGKILL,
and the time until the job and all its vertices are RUNNING again, as
`GET /jobs/:id` on the surviving JobManager shows them, is measured.

Both engines get the same ZooKeeper session timeout
(`high-availability.zookeeper.client.session-timeout`, `--failover-session-ms`),
their own cluster id under `/flink`, and their HA storage in the run's
directory. Flink needs nothing beyond flink-dist for it: the ZooKeeper
client and Curator are in flink-dist, shaded
(`org.apache.flink.shaded.zookeeper3`, `org.apache.flink.shaded.curator5`).

flowc runs with its defaults, so with `high-availability.flowc.fast-failover:
true`: its standby finds the killed leader's RPC port refusing connections
and does not wait out the session (docs/HA.md); Flink has no such option and
waits for the session to expire."""

import os
import subprocess
import tempfile
import time

from .cluster import JobFailed, Unavailable, all_running
from .flink import FlinkCluster
from .flowc import FlowcCluster, ROOT
from .procs import free_port, get_json, log

ZOOKEEPER_SH = os.path.join(ROOT, "playground", "zookeeper", "zookeeper.sh")
METRIC = "failover: leading JM killed → all tasks RUNNING on the standby"


class ZooKeeper:
    """A standalone ZooKeeper of this harness run, stopped with it."""

    def __init__(self, work):
        self.dir = os.path.join(work, "zookeeper")
        self.port = free_port()

    def start(self):
        for args in (["fetch"], ["start", "--dir", self.dir, "--port", str(self.port),
                                 "--parent-pid", str(os.getpid())]):
            out = subprocess.run(["bash", ZOOKEEPER_SH, *args], capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                raise Unavailable(f"zookeeper.sh {args[0]} failed: {out.stdout[-1500:]} {out.stderr[-1500:]}")
        log(f"ZooKeeper at 127.0.0.1:{self.port}")

    @property
    def quorum(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        subprocess.run(["bash", ZOOKEEPER_SH, "stop", "--dir", self.dir], capture_output=True, timeout=60)


def ha_settings(zk, workdir, storage):
    """The `high-availability.*` keys both engines read, with this run's
    cluster id; `storage` is the storage directory as the engine takes it."""
    return {
        "high-availability.type": "zookeeper",
        "high-availability.zookeeper.quorum": zk.quorum,
        "high-availability.zookeeper.path.root": "/flink",
        "high-availability.cluster-id": f"/bench-{os.path.basename(workdir)}",
        "high-availability.storageDir": storage,
    }


class HaMixin:
    """Two JobManagers and one TaskManager: the first JobManager leads (it
    is started alone and answers REST before the second one starts)."""

    def configure_ha(self, zk, session_ms):
        self.zk = zk
        self.session_ms = session_ms
        self.standby = None
        self.standby_port = None

    def _append_conf(self, path, cfg):
        with open(path, "a") as f:
            for k, v in cfg.items():
                f.write(f"{k}: {v}\n")

    def wait_rest(self, port, what, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if get_json(f"http://127.0.0.1:{port}/overview", timeout=2):
                return
            for p in [self.jm, self.standby]:
                if p is not None and p.poll() is not None:
                    raise JobFailed(f"{self.name}: process {p.pid} exited with {p.returncode}; see {p.log_path}")
            time.sleep(0.1)
        raise JobFailed(f"{self.name}: {what} does not answer REST after {timeout} s (see {self.workdir})")

    def start(self):
        self.write_conf()
        self.jm = self.start_jobmanager(1, self.rest_port)
        self.wait_rest(self.rest_port, "the first JobManager")
        self.standby_port = free_port()
        self.standby = self.start_jobmanager(2, self.standby_port)
        self.wait_rest(self.standby_port, "the standby JobManager")
        self.start_taskmanager()
        return self.wait_slots(1)

    def kill_leader(self):
        """SIGKILLs the leading JobManager; REST calls go to the standby from now on."""
        self.procs.kill(self.jm)
        self.jm.wait(10)
        if self.jm in self.procs.live:
            self.procs.live.remove(self.jm)
        self.jm, self.standby = self.standby, None
        self.rest_port = self.standby_port

    def stop(self):
        if self.standby is not None:
            self.procs.stop(self.standby)
            self.standby = None
        super().stop()


class FlowcHa(HaMixin, FlowcCluster):
    def __init__(self, procs, workdir, zk, session_ms):
        super().__init__(procs, workdir)
        self.configure_ha(zk, session_ms)

    def write_conf(self):
        super().write_conf()
        cfg = ha_settings(self.zk, self.workdir, os.path.join(self.workdir, "ha"))
        cfg["high-availability.zookeeper.client.session-timeout"] = self.session_ms
        self._append_conf(self.config, cfg)

    def start_jobmanager(self, n, rest_port):
        return self.procs.start([self.bin, "jobmanager", "--config", self.config,
                                 "-D", f"rest.port={rest_port}", "-D", f"jobmanager.rpc.port={free_port()}"],
                                os.path.join(self.workdir, f"jobmanager-{n}.log"))

    def start_taskmanager(self):
        # It finds the leader in ZooKeeper, not at jobmanager.rpc.port.
        self.tm_count += 1
        p = self.procs.start([self.bin, "taskmanager", "--config", self.config],
                             os.path.join(self.workdir, f"taskmanager-{self.tm_count}.log"))
        self.tms.append(p)
        return p


class FlinkHa(HaMixin, FlinkCluster):
    def __init__(self, procs, workdir, zk, session_ms):
        super().__init__(procs, workdir)
        self.configure_ha(zk, session_ms)

    def write_conf(self):
        super().write_conf()
        cfg = ha_settings(self.zk, self.workdir, "file://" + os.path.join(self.workdir, "ha"))
        cfg["high-availability.zookeeper.client.session-timeout"] = f"{self.session_ms} ms"
        # With HA the JobManager's RPC port is this range's (not jobmanager.rpc.port): any free one.
        cfg["high-availability.jobmanager.port"] = "0"
        self._append_conf(os.path.join(self.conf, "config.yaml"), cfg)

    def start_jobmanager(self, n, rest_port):
        return self.procs.start(self._argv(f"jobmanager-{n}", self.jm_jvm,
                                           "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
                                           [*self.jm_dyn, "-D", f"rest.port={rest_port}"]),
                                os.path.join(self.workdir, f"jobmanager-{n}.out"))


HA_ENGINES = {"flowc": FlowcHa, "Flink": FlinkHa}


def wait_checkpoint(c, jid, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cp = get_json(f"{c.url}/jobs/{jid}/checkpoints", timeout=5)
        if cp and (cp.get("counts") or {}).get("completed", 0) >= 1:
            return
        time.sleep(0.2)
    raise JobFailed(f"{c.name}: job {jid} completed no checkpoint in {timeout} s (see {c.workdir})")


def run(engine, procs, work, run_no, args, res, zk):
    """One failover measurement of `engine`; adds it to `res`."""
    wd = tempfile.mkdtemp(prefix=f"{engine}-failover{run_no}-", dir=work)
    c = HA_ENGINES[engine](procs, wd, zk, args.failover_session_ms)
    try:
        c.start()
        jid = c.submit_long(args.recovery_rate)
        c.wait_all_running(jid, timeout=120)
        wait_checkpoint(c, jid)
        time.sleep(args.recovery_warmup)
        j = c.job(jid)
        if not j or not all_running(j):
            raise JobFailed(f"{engine}: job {jid} is {j and j.get('state')}, not running, before the kill "
                            f"(see {wd})")
        t0 = time.monotonic()
        c.kill_leader()
        recovered = None
        # The survivor answers once it leads (before: an error, or no answer);
        # one that shows the job running at once did not lose its leader.
        interrupted = False
        deadline = t0 + 180
        while time.monotonic() < deadline:
            j = c.job(jid)
            if j is None or not all_running(j):
                interrupted = True
            elif interrupted:
                recovered = time.monotonic() - t0
                break
            else:
                raise JobFailed(f"{engine}: the job ran on after the SIGKILL: the killed JobManager did not lead "
                                f"(see {wd})")
            if j is not None:
                if j.get("state") in ("FAILED", "CANCELED", "FINISHED"):
                    raise JobFailed(f"{engine}: job {jid} {j.get('state')} after the leader was killed")
            time.sleep(0.05)
        if recovered is None:
            raise JobFailed(f"{engine}: job {jid} not running on the standby 180 s after the leader was killed "
                            f"(see {wd})")
        log(f"{engine}: all tasks RUNNING on the standby {recovered:.2f} s after the SIGKILL")
        res.add(METRIC, engine, recovered, "lower", "s")
        c.cancel(jid)
    finally:
        c.stop()
