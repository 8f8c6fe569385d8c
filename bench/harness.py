#!/usr/bin/env python3
"""flowc vs Apache Flink 2.3 on one machine, A/B interleaved (see README.md).

    bench/run.sh [--smoke] [--events N] [--runs 3]
                 [--only core|kafka|start|recovery|limit|nexmark|failover|sessions|running|interval-join]

Measures (1) engine core: Click Event Count on N generated events, p=2,
chaining off and on → events/s; (2) Kafka end to end: the same job reading
a topic preloaded with N click events from the earliest offset → events/s,
next to kcat's raw read rate; (3) cluster start: processes started →
TaskManager registered with its slots free; (4) recovery: SIGKILL of the
TaskManager under a running job → failure noticed → all tasks RUNNING
again on a new TaskManager; (5) peak RSS of JobManager and TaskManager
during (1) and (2); (6, `--only limit`) the expression-heavy datagen
pipelines (two of expressions, one with a Rust UDF call), against Flink
DataStream jobs with the same lambdas; (7, `--only nexmark`, not in the
default run) the Nexmark queries on both engines (benchlib/nexmark.py);
(8, `--only failover`, not in the default run) JobManager failover with
ZooKeeper HA: SIGKILL of the leading JobManager → all tasks RUNNING again
as the standby shows them (benchlib/failover.py); (9, `--only sessions`;
10, `--only running`; not in the default run) keyed state: a session
window per key and a running aggregate per key over N keys, throughput and
state size after N keys (benchlib/sessions.py, benchlib/running.py);
(11, `--only interval-join`, not in the default run) an interval join of
two generated streams against Flink's `intervalJoin`, throughput, state
size and peak RSS (benchlib/interval_join.py). Next to (1) and (6), the physical limit: the same jobs written by hand as
typed Rust (bench/limit/). Prints one markdown table of medians and ratios.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib.cluster import Unavailable, JobFailed, all_running, duration_s  # noqa: E402
from benchlib.flink import FlinkCluster  # noqa: E402
from benchlib.flowc import FlowcCluster, check_available, prebuild_udfs  # noqa: E402
from benchlib import kafka  # noqa: E402
from benchlib import failover  # noqa: E402
from benchlib import interval_join  # noqa: E402
from benchlib import limit  # noqa: E402
from benchlib import nexmark  # noqa: E402
from benchlib import running  # noqa: E402
from benchlib import sessions  # noqa: E402
from benchlib.procs import Procs, RssSampler, log  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
ENGINES = {"flowc": FlowcCluster, "Flink": FlinkCluster}
GROUPS = ("core", "kafka", "start", "recovery", "limit", "nexmark", "failover", "sessions", "running",
          "interval-join")
# Measured only when asked for: `--only nexmark` runs every query,
# `--only failover` a ZooKeeper and two JobManagers per engine, `--only
# sessions` and `--only running` keyed state (issue 11), `--only
# interval-join` a join (issue 12).
DEFAULT_GROUPS = ("core", "kafka", "start", "recovery", "limit")


class Results:
    """metric → engine → [figures]; plus how each metric compares."""

    def __init__(self):
        self.data = {}
        self.kind = {}
        self.unit = {}
        self.order = []
        self.live = set()

    def add(self, metric, engine, value, kind, unit):
        if metric not in self.data:
            self.data[metric] = {}
            self.order.append(metric)
        self.kind[metric] = kind
        self.unit[metric] = unit
        self.data[metric].setdefault(engine, []).append(value)
        log(f"{engine:5} {metric}: {fmt(value, unit)}")

    def declare(self, metric, kind, unit):
        if metric not in self.data:
            self.data[metric] = {}
            self.order.append(metric)
        self.kind[metric] = kind
        self.unit[metric] = unit

    def median(self, metric, engine):
        v = self.data.get(metric, {}).get(engine)
        return statistics.median(v) if v else None

    def table(self, unavailable):
        with_limit = any("limit" in self.data[m] for m in self.order)
        if with_limit:
            rows = ["| metric | flowc | Flink 2.3 | ratio | limit (typed Rust) | flowc / limit | runs |",
                    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        else:
            rows = ["| metric | flowc | Flink 2.3 | ratio | runs |", "| --- | ---: | ---: | ---: | ---: |"]
        for m in self.order:
            unit, kind = self.unit[m], self.kind[m]
            a, b = self.median(m, "flowc"), self.median(m, "Flink")
            def cell(v, e):
                if v is not None:
                    return fmt(v, unit)
                if e in unavailable:
                    return "pending"
                return "failed" if e in self.live else "—"
            fa, fb = cell(a, "flowc"), cell(b, "Flink")
            ratio = "—"
            if a and b:
                r = a / b if kind == "higher" else b / a
                ratio = f"{r:.2f}×"
            n = f"{len(self.data[m].get('flowc', []))} + {len(self.data[m].get('Flink', []))}"
            if with_limit:
                lim = self.median(m, "limit")
                share = f"{100 * a / lim:.0f} %" if a and lim else "—"
                rows.append(f"| {m} | {fa} | {fb} | {ratio} | {fmt(lim, unit)} | {share} | {n} |")
            else:
                rows.append(f"| {m} | {fa} | {fb} | {ratio} | {n} |")
        return "\n".join(rows)


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "ev/s":
        return f"{v / 1e6:.2f} M ev/s" if v >= 1e5 else f"{v:,.0f} ev/s"
    if unit == "s":
        return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"
    if unit == "MiB":
        return f"{v:.0f} MiB"
    if unit == "KiB":
        return f"{v:,.0f} KiB"
    if unit == "%":
        return f"{v:.0f} %"
    return str(v)


def check_counts(engine, j, events):
    """Sanity check from the job's own vertex metrics, where it reports them:
    the window vertex reads every event and, at exactly 1000 clicks per page
    per window, emits one record per 1000 events."""
    for v in j.get("vertices") or []:
        m = v.get("metrics") or {}
        if "Counter" in v.get("name", "") and m.get("read-records-complete", True):
            got = m.get("read-records")
            if got and got != events:  # 0: the engine does not count records
                print(f"WARNING: {engine}: vertex {v.get('name')!r} read {got:,} records, expected {events:,}",
                      flush=True)
        if v.get("name", "").startswith("Discarding Sink") and events % 6000 == 0:
            got = m.get("read-records")
            if got and got != events // 1000:
                print(f"WARNING: {engine}: the sink got {got:,} windows, expected {events // 1000:,}", flush=True)


def run_cluster_block(engine, cls, procs, work, run, groups, args, res, broker, topic):
    """One engine, one run: start a cluster, measure, stop it."""
    wd = tempfile.mkdtemp(prefix=f"{engine}-r{run}-", dir=work)
    c = cls(procs, wd)
    try:
        t = c.start()
        res.add("cluster start → slots free", engine, t, "lower", "s")
        if "core" in groups:
            peaks = {}
            for chaining in (False, True):
                metric = f"core, datagen {args.events_label}, p=2, chaining {'on' if chaining else 'off'}"
                jid = c.submit_core(args.events, chaining)
                with RssSampler(c.pids()) as s:
                    j = c.finished_job_stats(jid, args.timeout)
                check_counts(engine, j, args.events)
                res.add(metric, engine, args.events / duration_s(j), "higher", "ev/s")
                for k, v in s.peak.items():
                    peaks[k] = max(peaks.get(k, 0), v)
            for k in ("jobmanager", "taskmanager"):
                res.add(f"peak RSS {'JobManager' if k == 'jobmanager' else 'TaskManager'}, core",
                        engine, peaks.get(k, 0) / 1024, "lower", "MiB")
        if "kafka" in groups and broker is not None:
            metric = f"Kafka end to end, {args.kafka_events_label} from earliest, p=2"
            jid = c.submit_kafka(broker.servers, topic)
            with RssSampler(c.pids()) as s:
                try:
                    j = c.finished_job_stats(jid, args.timeout, stall=30)
                except JobFailed:
                    c.cancel(jid)
                    raise
            check_counts(engine, j, args.kafka_events)
            rate = args.kafka_events / duration_s(j)
            res.add(metric, engine, rate, "higher", "ev/s")
            if args.ceiling:
                res.add("Kafka end to end, % of kcat raw read", engine, 100 * rate / args.ceiling, "higher", "%")
            for k in ("jobmanager", "taskmanager"):
                res.add(f"peak RSS {'JobManager' if k == 'jobmanager' else 'TaskManager'}, Kafka",
                        engine, s.peak.get(k, 0) / 1024, "lower", "MiB")
    finally:
        c.stop()


def run_limit_core(args, res):
    """The core job by hand (typed Rust), once per run, next to both chainings."""
    rate, windows = limit.run("core", args.events)
    for chaining in ("off", "on"):
        res.add(f"core, datagen {args.events_label}, p=2, chaining {chaining}", "limit", rate, "higher", "ev/s")
    if args.events % 6000 == 0 and windows != args.events // 1000:
        print(f"WARNING: limit: the core job fired {windows:,} windows, expected {args.events // 1000:,}", flush=True)


def run_pipelines(engine, cls, procs, work, run, args, res):
    """(6) The expression-heavy pipelines: flowc and Flink each on a fresh
    cluster, then the same jobs by hand (typed Rust)."""
    if engine in ENGINES:
        wd = tempfile.mkdtemp(prefix=f"{engine}-pipelines{run}-", dir=work)
        c = cls(procs, wd)
        try:
            c.start()
            for label, (job_file, job) in limit.PIPELINES.items():
                if engine == "flowc":
                    jid = c.submit_pipeline(job_file, args.events)
                else:
                    jid = c.submit_pipeline(job, args.events)
                j = c.finished_job_stats(jid, args.timeout)
                res.add(f"{label}, datagen {args.events_label}, p=2", engine,
                        args.events / duration_s(j), "higher", "ev/s")
        finally:
            c.stop()
    elif engine == "limit":
        for label, (_, job) in limit.PIPELINES.items():
            rate, kept = limit.run(job, args.events)
            want = limit.expected_kept(job, args.events)
            if want is not None and kept != want:
                print(f"WARNING: limit: {job} kept {kept:,} records, expected {want:,}", flush=True)
            res.add(f"{label}, datagen {args.events_label}, p=2", "limit", rate, "higher", "ev/s")


def run_recovery(engine, cls, procs, work, run, args, res):
    wd = tempfile.mkdtemp(prefix=f"{engine}-rec{run}-", dir=work)
    c = cls(procs, wd)
    try:
        c.start()
        jid = c.submit_long(args.recovery_rate)
        c.wait_all_running(jid, timeout=120)
        time.sleep(args.recovery_warmup)
        j = c.job(jid)
        if not j or not all_running(j):
            raise JobFailed(f"{engine}: job {jid} is {j and j.get('state')}, not running, before the kill "
                            f"(see {wd})")
        t0 = time.monotonic()
        c.kill_taskmanager()
        c.start_taskmanager()
        noticed = recovered = None
        deadline = t0 + 180
        while time.monotonic() < deadline:
            j = c.job(jid)
            now = time.monotonic()
            if j is not None:
                if noticed is None and not all_running(j):
                    noticed = now - t0
                elif noticed is not None and all_running(j):
                    recovered = now - t0
                    break
                if j.get("state") in ("FAILED", "CANCELED", "FINISHED"):
                    raise JobFailed(f"{engine}: job {jid} {j.get('state')} after the TaskManager was killed")
            time.sleep(0.05)
        if recovered is None:
            raise JobFailed(f"{engine}: job {jid} not running again 180 s after the kill "
                            f"(noticed: {noticed})")
        res.add("recovery: TM killed → failure noticed", engine, noticed, "lower", "s")
        res.add("recovery: TM killed → all tasks RUNNING on a new TM", engine, recovered, "lower", "s")
        c.cancel(jid)
    finally:
        c.stop()


def run_failover(live, procs, work, args, res, failures):
    zk = failover.ZooKeeper(work)
    try:
        zk.start()
    except Unavailable as u:
        failures.append(f"failover: {u}")
        print(f"failover: {u}", flush=True)
        return
    try:
        for run in range(args.runs):
            order = live if run % 2 == 0 else list(reversed(live))
            for e in order:
                log(f"failover run {run + 1}/{args.runs}: {e}")
                try:
                    failover.run(e, procs, work, run, args, res, zk)
                except JobFailed as err:
                    failures.append(f"{e}, failover run {run + 1}: {err}")
                    print(f"{e} failover run {run + 1} failed: {err}", flush=True)
    finally:
        zk.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="200 k events, 1 run: checks that everything works")
    ap.add_argument("--events", type=int, help="events per core run [60000000; smoke 200000]")
    ap.add_argument("--kafka-events", type=int, help="events in the Kafka topic [--events, at most 20000000]")
    ap.add_argument("--runs", type=int, help="runs per engine; the table shows medians [3; smoke 1]")
    ap.add_argument("--only", action="append", choices=GROUPS, help="measure only this group (repeatable)")
    ap.add_argument("--engines", default="flowc,Flink", help="comma-separated: flowc,Flink (the limit column "
                    "runs whenever bench/limit's binary is built)")
    ap.add_argument("--nexmark-events", type=int, help="Nexmark events [10000000; smoke 200000]")
    ap.add_argument("--nexmark-queries", help=f"comma-separated [{','.join(nexmark.QUERIES)}]")
    ap.add_argument("--flowc-set", action="append", default=[], metavar="'KEY = VALUE'",
                    help="a `set` line for every flowc Nexmark query (repeatable), e.g. "
                    "'table.optimizer.projection-pushdown-enabled = false'")
    ap.add_argument("--keyed-events", type=int, help="records of the sessions and running jobs "
                    "[20000000; smoke 1000000]")
    ap.add_argument("--keyed-keys", type=int, help="keys of the sessions and running jobs [100000; smoke 10000]")
    ap.add_argument("--keyed-checkpoint-ms", type=int, help="their checkpoint interval, and the interval "
                    "join's [1000; smoke 200]")
    ap.add_argument("--join-events", type=int, help="records of each side of the interval join "
                    "[10000000; smoke 200000]")
    ap.add_argument("--timeout", type=float, default=900, help="seconds a job may take")
    ap.add_argument("--recovery-rate", type=int, default=20000, help="events/s of the recovery job")
    ap.add_argument("--recovery-warmup", type=float, default=5.0, help="seconds the job runs before the kill")
    ap.add_argument("--failover-session-ms", type=int, default=4000,
                    help="ZooKeeper session timeout of both engines' JobManagers (failover) [4000]")
    ap.add_argument("--workdir", help="logs and state [bench/.cache/runs/<time>]")
    ap.add_argument("--keep", action="store_true", help="keep the Kafka broker's data in the work dir")
    args = ap.parse_args()

    args.events = args.events or (200_000 if args.smoke else 60_000_000)
    args.runs = args.runs or (1 if args.smoke else 3)
    args.kafka_events = args.kafka_events or min(args.events, 20_000_000)
    label = lambda n: f"{n / 1e6:g} M" if n >= 1_000_000 else f"{n / 1e3:g} k"
    args.events_label, args.kafka_events_label = label(args.events), label(args.kafka_events)
    args.keyed_events = args.keyed_events or (1_000_000 if args.smoke else 20_000_000)
    args.keyed_keys = args.keyed_keys or (10_000 if args.smoke else 100_000)
    args.keyed_checkpoint_ms = args.keyed_checkpoint_ms or (200 if args.smoke else 1000)
    args.keyed_events_label = label(args.keyed_events)
    args.join_events = args.join_events or (200_000 if args.smoke else 10_000_000)
    args.join_events_label = label(args.join_events)
    groups = set(args.only or DEFAULT_GROUPS)
    args.nexmark_queries = [q.strip() for q in (args.nexmark_queries or ",".join(nexmark.QUERIES)).split(",")
                            if q.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in engines:
        if e not in ENGINES:
            ap.error(f"unknown engine {e}; choose from {', '.join(ENGINES)}")

    cache = os.environ.get("FLOWC_BENCH_CACHE", os.path.join(BENCH, ".cache"))
    work = args.workdir or os.path.join(cache, "runs", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(work, exist_ok=True)
    log(f"work dir {work}; events {args.events:,}, kafka events {args.kafka_events:,}, runs {args.runs}, "
        f"groups {','.join(g for g in GROUPS if g in groups)}; load average {os.getloadavg()[0]:.1f}")

    unavailable = {}
    for e in engines:
        try:
            if e == "flowc":
                check_available()
            else:
                FlinkCluster(None, work)
        except Unavailable as u:
            unavailable[e] = str(u)
            print(f"{e} side unavailable: {u}", flush=True)
    live = [e for e in engines if e not in unavailable]
    try:
        limit.check_available()
        with_limit = bool(groups & {"core", "limit"})
    except Unavailable as u:
        with_limit = False
        if groups & {"core", "limit"}:
            print(f"limit column unavailable: {u}", flush=True)

    procs = Procs()
    broker = None
    res = Results()
    res.live = set(live)
    failures = []

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    ok = False
    try:
        topic = None
        if "kafka" in groups and live:
            try:
                broker = kafka.Broker(work)
                broker.start()
                topic = f"clicks-{args.kafka_events}"
                log(f"preloading {args.kafka_events:,} click events into {topic}")
                broker.preload(topic, args.kafka_events)
            except Unavailable as u:
                print(f"Kafka unavailable: {u}; skipping the Kafka measurement", flush=True)
                groups.discard("kafka")
                broker = None
        args.ceiling = None
        if "limit" in groups and "flowc" in live:
            for job_file, _ in limit.PIPELINES.values():
                if job_file == "udf_pipeline.flow":
                    log(f"building the Rust UDFs of {job_file} (flowc compile)")
                    try:
                        log(f"built in {prebuild_udfs(job_file, work):.1f} s")
                    except (JobFailed, OSError, subprocess.TimeoutExpired) as err:
                        failures.append(f"flowc, UDF build: {err}")
                        print(f"flowc UDF build failed: {err}", flush=True)
        for run in range(args.runs):
            order = live if run % 2 == 0 else list(reversed(live))
            if "kafka" in groups and broker is not None and kafka.kcat_bin():
                secs = kafka.raw_read_seconds(broker.servers, topic, args.kafka_events)
                res.add("Kafka raw read, kcat (librdkafka)", "ceiling", args.kafka_events / secs, "higher", "ev/s")
                args.ceiling = statistics.median(res.data["Kafka raw read, kcat (librdkafka)"]["ceiling"])
            if groups & {"core", "kafka", "start"}:
                for e in order:
                    log(f"run {run + 1}/{args.runs}: {e}")
                    try:
                        run_cluster_block(e, ENGINES[e], procs, work, run, groups, args, res, broker, topic)
                    except JobFailed as err:
                        failures.append(f"{e}, run {run + 1}: {err}")
                        print(f"{e} run {run + 1} failed: {err}", flush=True)
            if with_limit and "core" in groups:
                log(f"run {run + 1}/{args.runs}: limit (core)")
                run_limit_core(args, res)
            if "limit" in groups:
                pipeline_engines = list(order) + (["limit"] if with_limit else [])
                for e in pipeline_engines:
                    log(f"run {run + 1}/{args.runs}: {e} (pipelines)")
                    try:
                        run_pipelines(e, ENGINES.get(e), procs, work, run, args, res)
                    except JobFailed as err:
                        failures.append(f"{e}, pipelines run {run + 1}: {err}")
                        print(f"{e} pipelines run {run + 1} failed: {err}", flush=True)
        if "nexmark" in groups and live:
            # Events of all kinds, as Nexmark counts them.
            args.nexmark_events = args.nexmark_events or (200_000 if args.smoke else 10_000_000)
            args.nexmark_label = label(args.nexmark_events)
            nexmark.FLOWC_SETTINGS[:] = args.flowc_set
            data = nexmark.prepare(work, args.nexmark_events)
            for run in range(args.runs):
                order = live if run % 2 == 0 else list(reversed(live))
                for e in order:
                    log(f"nexmark run {run + 1}/{args.runs}: {e}")
                    try:
                        nexmark.run(e, procs, work, run, args, res, data)
                    except JobFailed as err:
                        failures.append(f"{e}, nexmark run {run + 1}: {err}")
                        print(f"{e} nexmark run {run + 1} failed: {err}", flush=True)
        for group, module in (("sessions", sessions), ("running", running), ("interval-join", interval_join)):
            if group not in groups or not live:
                continue
            for run in range(args.runs):
                order = live if run % 2 == 0 else list(reversed(live))
                for e in order:
                    log(f"{group} run {run + 1}/{args.runs}: {e}")
                    try:
                        module.run(e, procs, work, run, args, res)
                    except JobFailed as err:
                        failures.append(f"{e}, {group} run {run + 1}: {err}")
                        print(f"{e} {group} run {run + 1} failed: {err}", flush=True)
        if "recovery" in groups:
            for run in range(args.runs):
                order = live if run % 2 == 0 else list(reversed(live))
                for e in order:
                    log(f"recovery run {run + 1}/{args.runs}: {e}")
                    try:
                        run_recovery(e, ENGINES[e], procs, work, run, args, res)
                    except JobFailed as err:
                        failures.append(f"{e}, recovery run {run + 1}: {err}")
                        print(f"{e} recovery run {run + 1} failed: {err}", flush=True)
        if "failover" in groups and live:
            run_failover(live, procs, work, args, res, failures)
        ok = True
    except KeyboardInterrupt:
        print("interrupted; stopping everything", file=sys.stderr)
    finally:
        procs.stop_all()
        if broker is not None:
            broker.stop()
            if not args.keep:  # the topic's log segments: ~60 bytes an event
                shutil.rmtree(broker.dir, ignore_errors=True)

    # Metrics an unavailable side would have had, so its column says "pending".
    ceiling = res.data.pop("Kafka raw read, kcat (librdkafka)", {}).get("ceiling")
    if "Kafka raw read, kcat (librdkafka)" in res.order:
        res.order.remove("Kafka raw read, kcat (librdkafka)")
    print()
    print(f"flowc vs Apache Flink 2.3 — {os.cpu_count()} cores; medians of {args.runs} run(s); "
          "ratio > 1 means flowc is better (flowc/Flink for rates, Flink/flowc for times and memory); "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print()
    print(res.table(unavailable))
    g, n = nexmark.geomean_ratio(res)
    if g:
        print(f"\nNexmark: geometric mean of the flowc/Flink throughput ratios over {n} queries: {g:.2f}×")
    if ceiling:
        print()
        print(f"Kafka raw read ceiling (kcat, librdkafka, {args.kafka_events_label} events): "
              f"{fmt(statistics.median(ceiling), 'ev/s')} (median of {len(ceiling)})")
    for e, why in unavailable.items():
        print(f"\n{e} side unavailable: {why}")
    for f_ in failures:
        print(f"\nfailed: {f_}")
    out = os.path.join(work, "results.json")
    with open(out, "w") as f:
        json.dump({"args": {k: v for k, v in vars(args).items()}, "unavailable": unavailable,
                   "results": res.data, "ceiling": ceiling}, f, indent=2)
    with open(os.path.join(work, "results.md"), "w") as f:
        f.write(res.table(unavailable) + "\n")
    print(f"\n(results in {out})")
    return 0 if ok and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
