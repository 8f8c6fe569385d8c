"""The physical-limit column: the benchmark jobs written by hand as typed
Rust (bench/limit/, the `flowc-limit` binary), run as plain processes.

    flowc-limit core|filter-strings|filter-map-select|udf --events N --parallelism 2
        → {"job", "events", "parallelism", "seconds", "events_per_second", "check"}
"""

import json
import os
import subprocess

from .cluster import Unavailable

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH)

# The expression-heavy pipelines: flowc's job file and the limit's job (also
# the Flink peer's `--job`), and the share of the records that reach the sink.
PIPELINES = {
    "filter on two string predicates": ("filter_strings.flow", "filter-strings"),
    "filter → map → select": ("filter_map_select.flow", "filter-map-select"),
    "filter → select with a Rust UDF call": ("udf_pipeline.flow", "udf"),
}


def limit_bin():
    return os.environ.get("FLOWC_LIMIT_BIN") or os.path.join(ROOT, "target", "release", "flowc-limit")


def check_available():
    b = limit_bin()
    if not os.path.isfile(b) or not os.access(b, os.X_OK):
        raise Unavailable(f"no flowc-limit binary at {b} (build it with `cargo build --release -p flowc-limit` "
                          "or set FLOWC_LIMIT_BIN)")
    return b


def run(job, events, parallelism=2, timeout=3600):
    """Runs one job; returns (events/s, check figure)."""
    out = subprocess.run([check_available(), job, "--events", str(events), "--parallelism", str(parallelism)],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"flowc-limit {job} failed: {out.stderr[-1500:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["events_per_second"], r["check"]


def expected_kept(job, events):
    """The records of `job` that reach the sink, counted from the generated
    records' cycles (pages: 6, referrers: 5; `user % 10` is not a cycle, so
    filter-map-select has no exact figure)."""
    def page(i):
        return i % 6

    if job == "filter-strings":  # page != "/help" and referrer contains "q="
        return sum(1 for i in range(30) if page(i) != 0 and i % 5 in (0, 3)) * (events // 30) + \
            sum(1 for i in range(events - events % 30, events) if page(i) != 0 and i % 5 in (0, 3))
    if job == "udf":  # page != "/help"
        return events - (events + 5) // 6
    return None
