"""What both engines' clusters share: a Flink-compatible REST API.

The harness drives flowc and Flink through the same calls: /overview for
"TaskManager registered with its slots free", /jobs/:id for state, duration
and the vertices' status."""

import time

from .procs import get_json, log


class Unavailable(Exception):
    """This engine's side cannot run (missing binary, subcommand, job file)."""


class JobFailed(Exception):
    pass


class RestCluster:
    name = "?"
    slots = 2

    def __init__(self, procs, workdir):
        self.procs = procs
        self.workdir = workdir
        self.rest_port = None
        self.jm = None
        self.tms = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.rest_port}"

    def pids(self):
        out = {}
        if self.jm is not None and self.jm.poll() is None:
            out["jobmanager"] = self.jm.pid
        live = [p for p in self.tms if p.poll() is None]
        if live:
            out["taskmanager"] = live[-1].pid
        return out

    def kill_taskmanager(self):
        """SIGKILLs the newest TaskManager (subclasses start them)."""
        p = self.tms[-1]
        self.procs.kill(p)
        p.wait(10)
        self.tms.remove(p)
        if p in self.procs.live:
            self.procs.live.remove(p)

    def wait_slots(self, want_tms=1, timeout=120, since=None):
        """Polls /overview until want_tms TaskManagers are registered and all
        their slots are free; returns the seconds since `since`."""
        since = since or time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            ov = get_json(self.url + "/overview", timeout=2)
            if ov and ov.get("taskmanagers", 0) >= want_tms \
                    and ov.get("slots-total", 0) >= self.slots * want_tms \
                    and ov.get("slots-available") == ov.get("slots-total"):
                return time.monotonic() - since
            for p in [self.jm] + self.tms:
                if p is not None and p.poll() is not None:
                    raise JobFailed(f"{self.name}: process {p.pid} exited with {p.returncode}; see {p.log_path}")
            time.sleep(0.05)
        raise JobFailed(f"{self.name}: no free slots after {timeout} s (see {self.workdir})")

    def job(self, job_id):
        return get_json(f"{self.url}/jobs/{job_id}", timeout=5)

    def wait_state(self, job_id, states, timeout, poll=0.2, stall=None):
        """Polls until the job is in one of `states`. With `stall`, gives up
        when the job's record counters (where it reports them) have not
        moved for that many seconds: a Kafka job that read everything but
        does not finish."""
        deadline = time.monotonic() + timeout
        last = None
        progress, moved = None, time.monotonic()
        while time.monotonic() < deadline:
            j = self.job(job_id)
            if j:
                last = j
                st = j.get("state")
                if st in states:
                    return j
                p = records(j)
                if p != progress:
                    progress, moved = p, time.monotonic()
                elif stall and p and time.monotonic() - moved > stall:
                    raise JobFailed(f"{self.name}: job {job_id} {st} but its record counts have not moved for "
                                    f"{stall} s at {p:,} records read + written over all vertices "
                                    "(does its source stop at the end of the topic?)")
                if st in ("FAILED", "CANCELED") and st not in states:
                    raise JobFailed(f"{self.name}: job {job_id} {st}; see {self.workdir}")
            time.sleep(poll)
        raise JobFailed(f"{self.name}: job {job_id} not {'/'.join(states)} after {timeout} s "
                        f"(last state {last and last.get('state')})")

    def wait_all_running(self, job_id, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            j = self.job(job_id)
            if j and all_running(j):
                return j
            if j and j.get("state") in ("FAILED", "CANCELED", "FINISHED"):
                raise JobFailed(f"{self.name}: job {job_id} {j.get('state')} before running")
            time.sleep(0.1)
        raise JobFailed(f"{self.name}: job {job_id} not running after {timeout} s")

    def finished_job_stats(self, job_id, timeout, stall=None):
        return self.wait_state(job_id, ("FINISHED",), timeout, stall=stall)

    def stop(self):
        for p in reversed(self.tms):
            self.procs.stop(p)
        if self.jm is not None:
            self.procs.stop(self.jm)
        self.tms = []
        self.jm = None


def records(j):
    """The sum of the vertices' record counters, or None if not reported."""
    total = None
    for v in j.get("vertices") or []:
        m = v.get("metrics") or {}
        for k in ("read-records", "write-records"):
            if isinstance(m.get(k), int):
                total = (total or 0) + m[k]
    return total


def all_running(j):
    vs = j.get("vertices") or []
    return j.get("state") == "RUNNING" and bool(vs) and all(v.get("status") == "RUNNING" for v in vs)


def duration_s(j):
    """The job's duration by the engine's own account (/jobs/:id `duration`, ms)."""
    d = j.get("duration")
    if d is None or d < 0:
        st, en = j.get("start-time"), j.get("end-time")
        if st and en and en > 0:
            d = en - st
    if d is None or d <= 0:
        raise JobFailed(f"job {j.get('jid')} reports no duration")
    return d / 1000.0
