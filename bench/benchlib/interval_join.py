"""An interval join against Flink 2.3 (issue 12's "Measure"):
bench/jobs/interval_join_datagen.flow on flowc (`from clicks | join
impressions on imp_id == impressions.imp_id within -10s, 0s`),
IntervalJoinBench on Flink (`clicks.keyBy(impId).intervalJoin(
impressions.keyBy(impId)).between(-10 s, 0)`), p=2, N generated records a
side, each click 0 to 10 s after its impression.

Three figures per engine and run, as sessions.py measures them:
throughput (the records of both sides, 2 N, over the job's duration, as
the engine reports it), the state size (the largest completed checkpoint
of the run: the join holds the last ~10 s of event time of both sides)
and the TaskManager's peak RSS.

Both sides must generate the same records: `check_same_records` runs
flowc's job with its two generators printed instead of joined (`flowc
run -p 1`, the job file's own `map`s) and IntervalJoinBench `--dump`
(the Java generators, no cluster), and compares every record of the
first 1000 of each side (ids, event times, campaigns). The harness runs it
before the first measured run; a difference fails the group."""

import datetime
import json
import os
import subprocess
import tempfile

from .cluster import JobFailed, Unavailable, duration_s
from .flink import FlinkCluster, java, peer_jar
from .flowc import JOBS, FlowcCluster, check_available
from .procs import RssSampler, log
from .sessions import state_size

PEER = "dev.flowc.bench.IntervalJoinBench"
JOB = "interval_join_datagen.flow"


def _ms(iso):
    """Epoch milliseconds of flowc's ISO-8601 timestamp text."""
    return round(datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def flowc_records(work, n):
    """The first `n` records of each side as flowc's job generates them:
    the job file up to its join, each side to a print sink."""
    with open(os.path.join(JOBS, JOB)) as f:
        text = f.read()
    head = text[:text.index("\nfrom clicks")]
    job = os.path.join(work, "interval_join_records.flow")
    with open(job, "w") as f:
        f.write(head + "\nfrom impressions | sink print\nfrom clicks | sink print\n")
    env = dict(os.environ, FLOWC_CONF_DIR=os.path.join(work, "no-conf"))
    out = subprocess.run([check_available(), "run", "-p", "1", job, "--events", str(n)],
                         capture_output=True, text=True, timeout=300, env=env)
    if out.returncode != 0:
        raise JobFailed(f"flowc run of the generators failed: {out.stderr[-1500:]}")
    records = set()
    for line in out.stdout.splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if "click_id" in r:
            records.add(("click", r["click_id"], r["imp_id"], _ms(r["ts"])))
        else:
            records.add(("impression", r["imp_id"], _ms(r["ts"]), r["campaign"]))
    return records


def flink_records(work, n):
    """The first `n` records of each side as IntervalJoinBench generates
    them (`--dump`, no cluster)."""
    classpath = FlinkCluster(None, work).classpath + ":" + peer_jar()
    out = subprocess.run([java(), "-cp", classpath, PEER, "--dump", str(n)],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise JobFailed(f"IntervalJoinBench --dump failed: {out.stderr[-1500:]}")
    records = set()
    for line in out.stdout.splitlines():
        kind, *fields = line.split()
        records.add((kind, *map(int, fields)))
    return records


def check_same_records(work, n=1000):
    """Raises JobFailed unless both engines' generators make the same
    first `n` records of each side."""
    wd = tempfile.mkdtemp(prefix="interval-join-records-", dir=work)
    ours, theirs = flowc_records(wd, n), flink_records(wd, n)
    if len(ours) != 2 * n:
        raise JobFailed(f"flowc's generators printed {len(ours)} distinct records, not {2 * n}")
    if ours != theirs:
        diff = sorted(ours ^ theirs)[:5]
        raise JobFailed(f"the generators differ in {len(ours ^ theirs)} records, e.g. {diff}")
    log(f"interval join: both engines generate the same {2 * n} records")


def run(engine, procs, work, run_no, args, res):
    """One engine, one run: a fresh cluster, the job to its end, its
    throughput, state size and peak RSS."""
    if run_no == 0 and not getattr(args, "join_records_checked", False):
        try:
            check_same_records(work)
        except Unavailable as u:
            raise JobFailed(f"cannot compare the generators: {u}")
        args.join_records_checked = True
    wd = tempfile.mkdtemp(prefix=f"{engine}-interval-join{run_no}-", dir=work)
    c = FlowcCluster(procs, wd) if engine == "flowc" else FlinkCluster(procs, wd)
    events, interval = args.join_events, args.keyed_checkpoint_ms
    try:
        c.start()
        if engine == "flowc":
            jid = c.submit(JOB, ["--events", str(events), "--checkpoint_interval", f"{interval}ms"])
        else:
            jid = c.submit(["--events", str(events), "--parallelism", "2", "--checkpoint-interval", str(interval)],
                           2, entry_class=PEER)
        with RssSampler(c.pids()) as s:
            j = c.finished_job_stats(jid, args.timeout)
        title = f"interval join (-10 s, 0), {args.join_events_label} events a side, p=2"
        res.add(title, engine, 2 * events / duration_s(j), "higher", "ev/s")
        size = state_size(c, jid)
        if size is None:
            log(f"{engine} interval join: no checkpoint completed during the run; no state size (run more events)")
        else:
            res.add("interval join, state size (largest checkpoint)", engine, size / 1024, "lower", "KiB")
        res.add("peak RSS TaskManager, interval join", engine, s.peak.get("taskmanager", 0) / 1024, "lower", "MiB")
    finally:
        c.stop()
