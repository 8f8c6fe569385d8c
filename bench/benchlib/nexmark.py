"""Nexmark (issue 16): each query of jobs/nexmark/ that both engines run, on
flowc and on Flink 2.3's SQL engine, p=2, on the same events.

The events are written once by `flowc nexmark-gen --files 2` (JSON lines,
two files per kind, each in time order) and read by both engines' file
sources: flowc's `source file` with the three Nexmark schemas (the job of
jobs/nexmark/qN.flow with its `source nexmark { … }` replaced by that, and
its file sink by `sink discard`), and Flink's `filesystem` connector with
the json format, the query's SELECT (jobs/nexmark/flink/qN.sql) inserted
into a `blackhole` table, as Nexmark's own Flink queries do, submitted by
jobs/nexmark/flink/NexmarkSubmit.java. Throughput is Nexmark's: events of
all kinds over the job's duration as the engine reports it. The state
size is what a query holds once every event is in (`wait_state_size`),
measured by a run before the measured one."""

import os
import re
import shutil
import subprocess
import tempfile
import time

from .cluster import JobFailed, duration_s
from .flink import FlinkCluster, JAVA_OPTS, flink_home, java
from .flowc import FlowcCluster, ROOT, flowc_bin
from .procs import RssSampler, get_json, log

NEXMARK = os.path.join(ROOT, "jobs", "nexmark")
# The state-size run's checkpoint interval, both engines.
STATE_CHECKPOINT_MS = 1000
# The queries of jobs/nexmark/ (Flink SQL runs each one too; q12 is in processing time).
QUERIES = ("q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q9", "q10", "q11", "q12", "q14", "q15", "q16", "q17",
           "q18", "q19", "q20", "q21", "q22")
TS = 'timestamp("yyyy-MM-dd HH:mm:ss.SSS")'
SCHEMAS = f"""
schema Person {{
    id: long, name: string, emailAddress: string, creditCard: string
    city: string, state: string, dateTime: {TS}, extra: string
}}
schema Auction {{
    id: long, itemName: string, description: string, initialBid: long, reserve: long
    dateTime: {TS}, expires: {TS}, seller: long, category: long, extra: string
}}
schema Bid {{
    auction: long, bidder: long, price: long, channel: string, url: string, dateTime: {TS}, extra: string
}}
"""
SOURCE = re.compile(r"source nexmark \{ kind: (person|auction|bid), events: \$events, rate: \$rate, seed: \$seed \}")


def prepare(work, events):
    """Writes the events (once per work dir); returns their directory."""
    data = os.path.join(work, f"nexmark-{events}")
    if not os.path.isdir(data):
        log(f"nexmark: writing {events:,} events")
        out = subprocess.run([flowc_bin(), "nexmark-gen", "--events", str(events), "--files", "2",
                              "--out", data + ".tmp"], capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise JobFailed(f"flowc nexmark-gen failed: {out.stderr[-2000:]}")
        os.rename(data + ".tmp", data)
    return data


# `set` lines added to every flowc query (`--flowc-set`), such as
# `table.optimizer.projection-pushdown-enabled = false` to measure a plan
# without projection push-down.
FLOWC_SETTINGS = []


def flowc_job(query, data, dest, state_run=False):
    """jobs/nexmark/<query>.flow reading the files of `data`, into a discarding sink.

    `state_run`: the source keeps watching the files' directories once it
    has read them (`watch`), so that the job never ends and holds its
    state after the last event, and a checkpoint every second measures it
    (see `wait_state_size`)."""
    with open(os.path.join(NEXMARK, f"{query}.flow")) as f:
        text = f.read()
    watch = ", watch: 1s" if state_run else ""
    text, n = SOURCE.subn(
        lambda m: f'source file {{ path: "{data}/{m.group(1)}", schema: {m.group(1).capitalize()}{watch} }}', text)
    if n == 0 or "sink file { path: $out }" not in text:
        raise JobFailed(f"nexmark: {query}.flow has no nexmark source or file sink to replace")
    text = text.replace("sink file { path: $out }", "sink discard")
    checkpoints = f"\nset execution.checkpointing.interval = {STATE_CHECKPOINT_MS}ms\n" if state_run else ""
    checkpoints += "".join(f"set {s}\n" for s in FLOWC_SETTINGS)
    text = re.sub(r"^(job \"[^\"]*\"\n)", lambda m: m.group(1) + checkpoints + SCHEMAS, text, count=1, flags=re.M)
    os.makedirs(dest, exist_ok=True)
    if os.path.isdir(os.path.join(NEXMARK, "udfs")) and not os.path.isdir(os.path.join(dest, "udfs")):
        shutil.copytree(os.path.join(NEXMARK, "udfs"), os.path.join(dest, "udfs"))
    path = os.path.join(dest, f"{query}{'-state' if state_run else ''}.flow")
    with open(path, "w") as f:
        f.write(text)
    return path


class NexmarkFlowc(FlowcCluster):
    """flowc's cluster, allowed to read the events' directory."""

    def __init__(self, procs, workdir, data):
        super().__init__(procs, workdir)
        self.data = data

    def write_conf(self):
        super().write_conf()
        with open(self.config, "a") as f:
            f.write(f"flowc.security.allowed-directories: {self.data}\n")


# NexmarkSubmit's classpath and jar, per harness work dir.
_TOOLS = {}


class NexmarkFlink(FlinkCluster):
    """Flink's cluster; queries go in through NexmarkSubmit (the SQL client side).

    Flink's own heartbeat timeout (50 s, not the recovery metric's 5 s) and a
    4 GiB TaskManager: the queries that keep every bid in a regular join's
    heap state (q7, q9, q20) otherwise pause in GC past a 5 s heartbeat and
    restart forever at 2 M events."""

    conf_overrides = {"heartbeat.timeout": 50000, "taskmanager.memory.process.size": "4096m"}

    def __init__(self, procs, workdir, data):
        super().__init__(procs, workdir)
        self.data = data
        self.tools = None

    def _tools(self):
        # Compiled once per harness run (the clusters of its queries share them).
        self.tools = self.tools or _TOOLS.get(os.path.dirname(self.workdir))
        if self.tools is None:
            lib = os.path.join(flink_home(), "lib")
            classes = os.path.join(self.workdir, "nexmark-classes")
            sources = [os.path.join(NEXMARK, "flink", f) for f in ("NexmarkGolden.java", "NexmarkSubmit.java")]
            out = subprocess.run(["javac", "-nowarn", "-cp", os.path.join(lib, "*"), "-d", classes, *sources],
                                 capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise JobFailed(f"javac NexmarkSubmit failed: {out.stderr[-2000:]}")
            jar = os.path.join(self.workdir, "nexmark-udf.jar")
            subprocess.run(["jar", "cf", jar, "-C", classes, "."], check=True, timeout=120)
            self.tools = (os.path.join(lib, "*") + ":" + classes, jar)
            _TOOLS[os.path.dirname(self.workdir)] = self.tools
        return self.tools

    def submit_query(self, query, parallelism=2, state_run=False):
        cp, jar = self._tools()
        sql = os.path.join(self.workdir, f"{query}.sql")
        shutil.copy(os.path.join(NEXMARK, "flink", f"{query}.sql"), sql)
        # The state-size run (see flowc_job): the filesystem source keeps
        # monitoring its directory, a checkpoint every second.
        props = [f"-Dnexmark.checkpoint-interval={STATE_CHECKPOINT_MS}",
                 "-Dnexmark.monitor-interval=1s"] if state_run else []
        out = subprocess.run([java(), *JAVA_OPTS, *props, "-cp", cp, "NexmarkSubmit", f"127.0.0.1:{self.rest_port}",
                              self.data, sql, str(parallelism), jar], capture_output=True, text=True, timeout=300)
        m = re.search(r"JobID ([0-9a-f]{32})", out.stdout)
        if out.returncode != 0 or not m:
            raise JobFailed(f"Flink: {query} submission failed: {out.stdout[-1500:]} {out.stderr[-3000:]}")
        return m.group(1)


def wait_state_size(c, jid, timeout):
    """The state a query holds once it has read every event: its latest
    completed checkpoint's size, in bytes, once three checkpoints in a row
    (a second apart) have had the same size and at least 5 s have passed.
    While events come in, every checkpoint differs (a join's or window's
    state grows or changes, a source's read positions move); once they are
    all in and the job waits for more (the sources watch their directories,
    see flowc_job), the state stands still. Windows whose end the watermark
    has not passed are in it; the end of input would close them."""
    t0 = time.monotonic()
    sizes = []  # (checkpoint id, state size) of the completed checkpoints seen, in order
    while time.monotonic() - t0 < timeout:
        j = c.job(jid) or {}
        if j.get("state") in ("FAILED", "CANCELED", "FINISHED"):
            raise JobFailed(f"state-size run ended {j.get('state')}")
        cp = get_json(f"{c.url}/jobs/{jid}/checkpoints", timeout=10) or {}
        done = ((cp.get("latest") or {}).get("completed")) or {}
        if done.get("id") is not None and (not sizes or sizes[-1][0] != done["id"]):
            sizes.append((done["id"], done.get("state_size") or 0))
        if len(sizes) >= 3 and len({s for _, s in sizes[-3:]}) == 1 and time.monotonic() - t0 >= 5:
            return sizes[-1][1]
        time.sleep(0.3)
    raise JobFailed(f"the state did not stand still within {timeout} s (checkpoints: {sizes[-5:]})")


def run(engine, procs, work, run_no, args, res, data):
    """One engine, one run: every query in turn, each on a fresh cluster, so
    that a TaskManager's peak RSS is the query's own (a JVM's heap, once
    grown, never shrinks; an allocator keeps freed pages a while).

    Per query, two jobs on its cluster: first the state-size run (the
    sources watch their directories, a checkpoint every second; see
    `wait_state_size`), which also warms the engine up on the query (a
    fresh JVM cost Flink's q9 40 %), cancelled once measured; then the
    measured run: the same query on the bounded input, its throughput
    (events / the job's `duration`) and the TaskManager's peak RSS over
    both jobs (the process is the query's own)."""
    failed = []
    for q in args.nexmark_queries:
        wd = tempfile.mkdtemp(prefix=f"{engine}-nexmark{run_no}-{q}-", dir=work)
        c = NexmarkFlowc(procs, wd, data) if engine == "flowc" else NexmarkFlink(procs, wd, data)
        size = None
        # One query that fails (to submit or to finish) does not stop
        # the others; the run reports every failure at its end.
        try:
            c.start()
            with RssSampler(c.pids()) as s:
                jid = submit(c, engine, q, data, wd, state_run=True)
                try:
                    size = wait_state_size(c, jid, args.timeout)
                except JobFailed as err:
                    print(f"{engine} nexmark {q}: no state size: {str(err)[:300]}", flush=True)
                c.cancel(jid)
                c.wait_state(jid, ("CANCELED", "FAILED", "FINISHED"), 120)
                jid = submit(c, engine, q, data, wd)
                j = c.finished_job_stats(jid, args.timeout)
        except JobFailed as err:
            print(f"{engine} nexmark {q} failed: {str(err)[:300]}", flush=True)
            failed.append(f"{q}: {str(err)[:300]}")
            continue
        finally:
            c.stop()
        res.add(f"nexmark {q}, {args.nexmark_label} events, p=2", engine, args.nexmark_events / duration_s(j),
                "higher", "ev/s")
        res.add(f"peak RSS TaskManager, nexmark {q}", engine, s.peak.get("taskmanager", 0) / 1024, "lower", "MiB")
        if size is not None:
            res.add(f"state size once all events are in, nexmark {q}", engine, size / 1024, "lower", "KiB")
    if failed:
        raise JobFailed(f"{len(failed)} quer{'y' if len(failed) == 1 else 'ies'} failed: " + "; ".join(failed))


def submit(c, engine, q, data, wd, state_run=False):
    if engine == "flowc":
        return c.submit(flowc_job(q, data, os.path.join(wd, "jobs"), state_run), [])
    return c.submit_query(q, state_run=state_run)


def geomean_ratio(res):
    """The geometric mean of flowc/Flink over the Nexmark queries both engines ran, and how many."""
    ratios = []
    for m in res.order:
        if m.startswith("nexmark "):
            a, b = res.median(m, "flowc"), res.median(m, "Flink")
            if a and b:
                ratios.append(a / b)
    if not ratios:
        return None, 0
    product = 1.0
    for r in ratios:
        product *= r
    return product ** (1 / len(ratios)), len(ratios)
