"""Keyed state against Flink 2.3 (issue 11's "Measure"), the running
aggregate: bench/jobs/running_datagen.flow on flowc (`key_by user |
aggregate { … }` with no window, an upsert stream), KeyedStateBench --job
running (a keyed `reduce`, one ValueState per key) on Flink, p=2, on the
same generated records over N keys. Throughput, state size after N keys
and peak RSS, as sessions.py measures them.

flowc emits two rows per update (`-U`, `+U`), Flink's `reduce` one: each
engine as its users would write the job (Flink SQL's GROUP BY emits both,
as flowc does)."""

from .sessions import measure


def run(engine, procs, work, run_no, args, res):
    measure(engine, procs, work, run_no, args, res, "running", "running_datagen.flow", "running aggregate per key")
