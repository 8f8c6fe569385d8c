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
all kinds over the job's duration as the engine reports it."""

import os
import re
import shutil
import subprocess
import tempfile

from .cluster import JobFailed, duration_s
from .flink import FlinkCluster, JAVA_OPTS, flink_home, java
from .flowc import FlowcCluster, ROOT, flowc_bin
from .procs import RssSampler, log

NEXMARK = os.path.join(ROOT, "jobs", "nexmark")
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


def flowc_job(query, data, dest):
    """jobs/nexmark/<query>.flow reading the files of `data`, into a discarding sink."""
    with open(os.path.join(NEXMARK, f"{query}.flow")) as f:
        text = f.read()
    text, n = SOURCE.subn(lambda m: f'source file {{ path: "{data}/{m.group(1)}", schema: {m.group(1).capitalize()} }}',
                          text)
    if n == 0 or "sink file { path: $out }" not in text:
        raise JobFailed(f"nexmark: {query}.flow has no nexmark source or file sink to replace")
    text = text.replace("sink file { path: $out }", "sink discard")
    text = re.sub(r"^(job \"[^\"]*\"\n)", lambda m: m.group(1) + SCHEMAS, text, count=1, flags=re.M)
    os.makedirs(dest, exist_ok=True)
    if os.path.isdir(os.path.join(NEXMARK, "udfs")) and not os.path.isdir(os.path.join(dest, "udfs")):
        shutil.copytree(os.path.join(NEXMARK, "udfs"), os.path.join(dest, "udfs"))
    path = os.path.join(dest, f"{query}.flow")
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

    def submit_query(self, query, parallelism=2):
        cp, jar = self._tools()
        sql = os.path.join(self.workdir, f"{query}.sql")
        shutil.copy(os.path.join(NEXMARK, "flink", f"{query}.sql"), sql)
        out = subprocess.run([java(), *JAVA_OPTS, "-cp", cp, "NexmarkSubmit", f"127.0.0.1:{self.rest_port}",
                              self.data, sql, str(parallelism), jar], capture_output=True, text=True, timeout=300)
        m = re.search(r"JobID ([0-9a-f]{32})", out.stdout)
        if out.returncode != 0 or not m:
            raise JobFailed(f"Flink: {query} submission failed: {out.stdout[-1500:]} {out.stderr[-3000:]}")
        return m.group(1)


def run(engine, procs, work, run_no, args, res, data):
    """One engine, one run: every query in turn, each on a fresh cluster, so
    that a TaskManager's peak RSS is the query's own (a JVM's heap, once
    grown, never shrinks; an allocator keeps freed pages a while)."""
    failed = []
    for q in args.nexmark_queries:
        wd = tempfile.mkdtemp(prefix=f"{engine}-nexmark{run_no}-{q}-", dir=work)
        c = NexmarkFlowc(procs, wd, data) if engine == "flowc" else NexmarkFlink(procs, wd, data)
        # One query that fails (to submit or to finish) does not stop
        # the others; the run reports every failure at its end.
        try:
            c.start()
            if engine == "flowc":
                jid = c.submit(flowc_job(q, data, os.path.join(wd, "jobs")), [])
            else:
                jid = c.submit_query(q)
            with RssSampler(c.pids()) as s:
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
    if failed:
        raise JobFailed(f"{len(failed)} quer{'y' if len(failed) == 1 else 'ies'} failed: " + "; ".join(failed))


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
