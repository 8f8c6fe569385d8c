"""Keyed state against Flink 2.3 (issue 11's "Measure"), the session-window
job: bench/jobs/sessions_datagen.flow on flowc, KeyedStateBench --job
sessions (EventTimeSessionWindows, the same 30 s gap) on Flink, p=2, on
the same generated records over N keys.

Two figures per engine and run: throughput (records over the job's
duration, as the engine reports it) and the state size after N keys: the
largest completed checkpoint of the run (`/jobs/:id/checkpoints`,
`summary.state_size.max`). Every key is in state from record N on and
stays there until the input ends, so that is the size of the checkpoints
taken with all N keys in; the checkpoint after the end (Flink takes one
when its tasks finish) may be smaller, the sessions having closed.

The running aggregate (running.py) is measured the same way, by
`measure` here."""

import tempfile

from .cluster import JobFailed, duration_s
from .flink import FlinkCluster
from .flowc import FlowcCluster
from .procs import RssSampler, get_json, log

PEER = "dev.flowc.bench.KeyedStateBench"


def state_size(c, jid):
    """The largest completed checkpoint of job `jid`, in bytes, or None."""
    cp = get_json(f"{c.url}/jobs/{jid}/checkpoints", timeout=10) or {}
    completed = (cp.get("counts") or {}).get("completed") or 0
    size = ((cp.get("summary") or {}).get("state_size") or {}).get("max")
    return size if completed and size else None


def measure(engine, procs, work, run_no, args, res, job, flow_file, title):
    """One engine, one run of `job` (`sessions` or `running`): a fresh
    cluster, the job to its end, its throughput, state size and peak RSS."""
    wd = tempfile.mkdtemp(prefix=f"{engine}-{job}{run_no}-", dir=work)
    c = FlowcCluster(procs, wd) if engine == "flowc" else FlinkCluster(procs, wd)
    events, keys, interval = args.keyed_events, args.keyed_keys, args.keyed_checkpoint_ms
    try:
        c.start()
        if engine == "flowc":
            jid = c.submit(flow_file, ["--events", str(events), "--keys", str(keys),
                                       "--checkpoint_interval", f"{interval}ms"])
        else:
            jid = c.submit(["--job", job, "--events", str(events), "--keys", str(keys), "--parallelism", "2",
                            "--checkpoint-interval", str(interval)], 2, entry_class=PEER)
        with RssSampler(c.pids()) as s:
            j = c.finished_job_stats(jid, args.timeout)
        label = f"{args.keyed_events_label} events over {keys:,} keys, p=2"
        res.add(f"{title}, {label}", engine, events / duration_s(j), "higher", "ev/s")
        size = state_size(c, jid)
        if size is None:
            log(f"{engine} {job}: no checkpoint completed during the run; no state size (run more events)")
        else:
            res.add(f"{title}, state size after {keys:,} keys", engine, size / 1024, "lower", "KiB")
        res.add(f"peak RSS TaskManager, {title}", engine, s.peak.get("taskmanager", 0) / 1024, "lower", "MiB")
    finally:
        c.stop()


def run(engine, procs, work, run_no, args, res):
    measure(engine, procs, work, run_no, args, res, "sessions", "sessions_datagen.flow", "session windows (gap 30 s)")
