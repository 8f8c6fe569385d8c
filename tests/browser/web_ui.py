#!/usr/bin/env python3
"""The web UI in a real browser: Debian's Chromium, driven by Playwright.

Run by tests/e2e_web_ui.rs against a live cluster it started; usage:

    python3 tests/browser/web_ui.py PARAMS.json

PARAMS.json names the cluster and what the checks expect (see `main`). Each
check opens the page as a person would, clicks, types and reads what the
page shows; a failed check leaves a screenshot `<check>.png` in the
scratch directory. Prints `ok <check>` / `FAILED <check>: reason` and a
closing `web UI checks: N of M passed`; exits 1 if any failed.

Playwright comes from PyPI and the browser from Debian (`/usr/bin/chromium`);
both are installed here when missing. `playwright install` is never run: it
downloads browsers, which is neither wanted nor possible here.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

CHROMIUM = os.environ.get("FLOWC_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def ensure_tools():
    """Installs Playwright (PyPI) and Chromium (Debian) when missing."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        pip = [sys.executable, "-m", "pip", "install", "-q", "playwright"]
        if subprocess.call(pip) != 0:
            subprocess.check_call(pip + ["--break-system-packages"])
    if not os.path.exists(CHROMIUM):
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            sys.exit(f"{CHROMIUM} is missing: install Debian's chromium package")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.check_call(["apt-get", "update", "-qq"], env=env)
        subprocess.check_call(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], env=env)


class Failed(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise Failed(message)


# Waits while the browser's events keep arriving. Playwright's sync API
# delivers events (requests, console messages) only while it is called:
# `time.sleep` would hold them back, so every pause goes through the page.
PAUSE = time.sleep


def pause(seconds):
    PAUSE(seconds)


def wait_until(what, fn, timeout=30.0, every=0.25):
    """Calls `fn` until it returns a truthy value; fails naming `what`."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # the page may be mid-render
            last = e
        pause(every)
    raise Failed(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last})" if last else ""))


class Session:
    """One browser (a fresh profile) and what it saw: requests, console errors."""

    def __init__(self, pw, params):
        self.params = params
        self.base = params["base"].rstrip("/")
        self.scratch = params["scratch"]
        self.profile = tempfile.mkdtemp(prefix="profile-", dir=self.scratch)
        self.ctx = pw.chromium.launch_persistent_context(
            self.profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 1000})
        self.requests = []  # (time, method, url)
        self.errors = []  # console errors and uncaught exceptions
        self.bad = []  # responses >= 500
        self.not_found = set()
        self.page = self.ctx.pages[0] if self.ctx.pages else self.ctx.new_page()
        self.page.set_default_timeout(20000)
        global PAUSE
        PAUSE = lambda seconds: self.page.wait_for_timeout(seconds * 1000)  # noqa: E731
        self.page.on("request", lambda r: self.requests.append((time.time(), r.method, r.url)))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("response", self._response)

    def _console(self, msg):
        # Chromium reports every 4xx/5xx answer as "Failed to load resource";
        # those are judged by their status in `_response`.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {msg.text}")

    def _response(self, r):
        if r.status >= 500:
            self.bad.append(f"{r.status} {r.request.method} {r.url}")
        elif r.status == 404:
            self.not_found.add(re.sub(r"[0-9a-f]{32}", ":id", r.url.replace(self.base, "")))

    def goto(self, hash_):
        url = f"{self.base}/{hash_}"
        if self.page.url.split("#")[0].rstrip("/") == self.base:
            self.page.evaluate("h => { location.hash = h; }", hash_)
        else:
            self.page.goto(url)

    def text(self, selector):
        return self.page.locator(selector).first.inner_text()

    def close(self):
        self.ctx.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# ---------- the checks ----------

def check_overview_and_graph(s):
    """The overview lists the job; its page draws the graph with the right vertices and edges."""
    p = s.params["job"]
    s.goto("#/overview")
    row = s.page.locator(f'tr[data-href="#/jobs/{p["jid"]}"]')
    row.wait_for()
    expect(p["name"] in row.inner_text(), f"the overview's row does not name the job: {row.inner_text()!r}")
    expect(s.page.locator('link[rel="icon"]').count() == 1, "no favicon link")
    fav = s.page.request.get(f"{s.base}/favicon.ico")
    expect(fav.ok and b"<svg" in fav.body(), f"/favicon.ico answers {fav.status}")
    row.locator("a").first.click()
    wait_until("the job graph", lambda: s.page.locator("#graph g.vx").count() == len(p["vertices"]))
    names = [s.page.locator("#graph g.vx").nth(i).get_attribute("aria-label").split(",")[0] for i in range(len(p["vertices"]))]
    expect(sorted(names) == sorted(v["name"] for v in p["vertices"]), f"vertices drawn: {names}")
    by_id = {v["id"]: v["name"] for v in p["vertices"]}
    edges = sorted((by_id.get(e.get_attribute("data-from")), by_id.get(e.get_attribute("data-to")), e.get_attribute("data-ship"))
                   for e in s.page.locator("#graph path.edge").all())
    want = sorted(tuple(e) for e in p["edges"])
    expect(edges == want, f"edges drawn: {edges}, expected {want}")
    wait_until("every vertex RUNNING in the graph",
               lambda: all("RUNNING" in s.page.locator("#graph g.vx").nth(i).get_attribute("aria-label") for i in range(len(names))))
    expect("RUNNING" in s.text("#header h1"), f"the header: {s.text('#header h1')!r}")


def check_vertex_drilldown(s):
    """A vertex opened from the graph with the keyboard: its subtasks, and a chart that gains points."""
    p = s.params["job"]
    v = next(v for v in p["vertices"] if v["name"] == p["drill"])
    s.goto(f'#/jobs/{p["jid"]}/overview')
    box = s.page.locator(f'#graph g.vx[data-vertex="{v["id"]}"]')
    box.wait_for()
    box.focus()
    # The graph is drawn again every second (its counts change): the
    # focused vertex keeps the focus across those refreshes.
    pause(2.5)
    focused = s.page.evaluate("document.activeElement && document.activeElement.getAttribute('data-vertex')")
    expect(focused == v["id"], f"the focus left the vertex box after the page refreshed (on {focused!r})")
    s.page.keyboard.press("Enter")
    wait_until("the subtasks table", lambda: s.page.locator("#vertex table.subtasks tr").count() == v["parallelism"] + 1)
    rows = s.page.locator("#vertex table.subtasks tr")
    for i in range(1, v["parallelism"] + 1):
        t = rows.nth(i).inner_text()
        expect("RUNNING" in t, f"subtask row {i}: {t!r}")
        expect(p["tm"] in t, f"subtask row {i} does not name the TaskManager {p['tm']}: {t!r}")
    # Metrics: choose one, watch its chart gain points.
    s.page.get_by_role("tab", name="Metrics").click()
    select = s.page.locator('#vertex select[data-chart-scope="vertex"]')
    select.wait_for()
    remove = s.page.locator("#vertex [data-chart-remove]")
    while remove.count():
        n = remove.count()
        remove.first.click()
        wait_until("a chart removed", lambda: remove.count() < n, timeout=5)
    metric = p.get("metric", "0.numRecordsInPerSecond")
    wait_until(f"{metric} among the metrics", lambda: s.page.locator(f'#vertex select option[value="{metric}"]').count() == 1)
    select.select_option(metric)
    chart = s.page.locator(f'#vertex .chartbox[data-metric="{metric}"] svg.chart')
    chart.wait_for()
    first = int(chart.get_attribute("data-points"))
    wait_until("the chart to gain three points", lambda: int(chart.get_attribute("data-points")) >= first + 3, timeout=20)


def check_back_pressure(s):
    """A vertex's back pressure: a level and busy, idle and back-pressured percentages per subtask."""
    p = s.params["job"]
    v = next(v for v in p["vertices"] if v["name"] == p["drill"])
    s.goto(f'#/jobs/{p["jid"]}/overview/{v["id"]}')
    s.page.get_by_role("tab", name="Back Pressure").click()
    bp = s.page.locator("#vertex table.backpressure tr")
    wait_until("the back pressure table", lambda: bp.count() == v["parallelism"] + 1)
    for i in range(1, v["parallelism"] + 1):
        t = bp.nth(i).inner_text()
        expect(re.search(r"\b(OK|LOW|HIGH)\b", t), f"back pressure row {i} has no level: {t!r}")
        pct = [int(x) for x in re.findall(r"(\d+)%", t)]
        expect(len(pct) == 3, f"back pressure row {i} lacks its three percentages: {t!r}")
        expect(95 <= sum(pct) <= 105, f"back pressure row {i}: busy, idle and back-pressured add up to {sum(pct)} %: {t!r}")


def check_taskmanager_logs(s):
    """The TaskManager's page shows lines of its real log, and follows it."""
    p = s.params["job"]
    s.goto("#/taskmanagers")
    href = urllib.parse.quote(p["tm"], safe="-_.!~*'()")  # as encodeURIComponent
    link = s.page.locator(f'a[href="#/taskmanagers/{href}"]')
    link.wait_for()
    link.click()
    wait_until("the TaskManager's page", lambda: p["tm"] in s.text("#header h1"))
    s.page.get_by_role("tab", name="Logs").click()
    pre = s.page.locator("#log-text")
    pre.wait_for()
    needle = s.params["tm_log_line"]
    wait_until(f"the log line {needle!r}", lambda: needle in pre.inner_text())
    # The directory's listing names the TaskManager's log file; opened
    # from it, that file shows the same line.
    log_file = s.params["tm_log_file"]
    entry = s.page.locator("#log-files a", has_text=log_file)
    wait_until(f"{log_file} among the log files", lambda: entry.count() == 1)
    entry.click()
    wait_until(f"{log_file} opened", lambda: log_file in s.text("#log-title") and needle in pre.inner_text())
    s.page.locator("#log-follow").check()
    before = len(s.requests)
    pause(2.5)
    logs = [u for (_, _, u) in s.requests[before:] if "/log" in u]
    expect(len(logs) >= 2, f"following the log fetched it {len(logs)} times in 2.5 s")
    s.page.get_by_role("tab", name="Stdout").click()
    wait_until("the stdout view", lambda: "Standard output" in s.text("#log-title"))
    # The process's standard output carries its log lines too.
    wait_until(f"the log line {needle!r} in the standard output", lambda: needle in pre.inner_text())


def check_submit_and_stop(s):
    """Upload a job file, run it, stop it with a savepoint from the page."""
    p = s.params["submit"]
    s.goto("#/submit")
    s.page.locator("#upload-file").set_input_files(p["file"])
    s.page.locator("#upload-btn").click()
    name = os.path.basename(p["file"])
    row = s.page.locator("table.jars tr", has_text=name).first
    row.wait_for()
    row.get_by_role("button", name="Run…").click()
    s.page.locator("#m-args").fill(p["args"])
    s.page.locator("#m-par").fill(str(p["parallelism"]))
    s.page.locator("#m-ok").click()
    jid = wait_until("the new job's page", lambda: (m := re.match(r"#/jobs/([0-9a-f]{32})", s.page.evaluate("location.hash"))) and m.group(1))
    print(f"submitted {jid}", flush=True)
    wait_until("the submitted job RUNNING with all its vertices", lambda: "RUNNING" in s.text("#header h1") and
               s.page.locator("#graph g.vx").count() > 0 and
               all("RUNNING" in g.get_attribute("aria-label") for g in s.page.locator("#graph g.vx").all()), timeout=60)
    s.page.get_by_role("button", name="Stop with Savepoint").click()
    s.page.locator("#m-ok").click()
    path = wait_until("the savepoint's path", lambda: s.page.locator(".savepoint-path").count() and s.text(".savepoint-path"), timeout=60)
    wait_until("the job FINISHED", lambda: "FINISHED" in s.text("#header h1"), timeout=60)
    print(f"savepoint {jid} {path}", flush=True)
    s.params["finished_jid"] = jid
    # An ended job's page does not poll.
    pause(1.5)
    before = len(s.requests)
    pause(3)
    late = [u for (_, _, u) in s.requests[before:]]
    expect(not late, f"the ended job's page still polls: {late}")


def check_quiet_after_leaving(s):
    """A running job's page that was left sends no request for that job."""
    p = s.params["job"]
    jid = p["jid"]
    for tab in ["overview", f'overview/{p["vertices"][-1]["id"]}/metrics', "checkpoints", "timeline"]:
        s.goto(f"#/jobs/{jid}/{tab}")
        wait_until(f"the job's {tab} page", lambda: jid in s.text("#header"))
        pause(1.5)
        s.goto("#/taskmanagers")
        left = time.time()
        pause(3)
        late = [u for (t, _, u) in s.requests if t > left and jid in u]
        expect(not late, f"after leaving {tab}: {late}")
    # An unknown tab shows so, and does not poll.
    s.goto(f"#/jobs/{jid}/no-such-tab")
    wait_until("the unknown tab's message", lambda: "no-such-tab" in s.text("#content"))
    pause(0.5)
    before = len(s.requests)
    pause(2.5)
    expect(len(s.requests) == before, f"an unknown tab polls: {[u for (_, _, u) in s.requests[before:]]}")


def check_configuration_and_timeline(s):
    """The job's configuration and the timeline of its subtasks' states."""
    p = s.params["job"]
    jid = p["jid"]
    s.goto(f"#/jobs/{jid}/configuration")
    wait_until("the execution configuration", lambda: "job-parallelism" in s.text("#content"))
    s.goto(f"#/jobs/{jid}/timeline")
    wait_until("the timeline", lambda: s.page.locator('svg.timeline rect[data-state="RUNNING"]').count() >= sum(v["parallelism"] for v in p["vertices"]))


def check_checkpoint_details(s):
    """A checkpoint of the history, its vertices and one vertex's subtasks; the checkpoint configuration."""
    p = s.params["job"]
    jid = p["jid"]
    s.goto(f"#/jobs/{jid}/configuration")
    wait_until("the checkpoint configuration", lambda: "interval" in s.text("#content") and "does not serve" not in s.text("#content"))
    s.goto(f"#/jobs/{jid}/checkpoints")
    first = s.page.locator("table.cp-history tr.click").first
    first.wait_for(timeout=30000)
    first.locator("a").click()
    wait_until("a checkpoint's vertices", lambda: s.page.locator("table.cp-vertices tr.click").count() == len(p["vertices"]))
    s.page.locator("table.cp-vertices tr.click a", has_text=p["drill"]).click()
    wait_until("the checkpoint's subtasks", lambda: s.page.locator("table.cp-subtasks tr").count() == p["drill_parallelism"] + 1)


def check_jobmanager_configuration(s):
    """The JobManager's configuration, filtered."""
    s.goto("#/jobmanager/configuration")
    wait_until("the configuration", lambda: "rest.port" in s.text("#content"))
    s.page.locator("#cfg-filter").fill("rest.port")
    wait_until("the filtered configuration", lambda: s.page.locator("#cfg-table tr").count() == 2)


def check_jobmanager(s):
    """The JobManager's metrics, log and environment."""
    s.goto("#/jobmanager/metrics")
    wait_until("the JobManager's metrics", lambda: s.page.locator("#content table tr").count() > 2)
    s.goto("#/jobmanager/logs")
    needle = s.params["jm_log_line"]
    wait_until(f"the log line {needle!r}", lambda: needle in s.text("#log-text"))
    s.goto("#/jobmanager/environment")
    wait_until("the environment", lambda: s.page.locator("#content .card").count() >= 1 and "does not serve" not in s.text("#content"))


def check_watermark_lineage(s):
    """The "why no window?" panel names the stalled partition."""
    p = s.params["lineage"]
    s.goto(f'#/jobs/{p["jid"]}/overview/{p["vid"]}/lineage')
    cell = s.page.locator(f'table.lineage .partition[data-topic="{p["topic"]}"][data-partition="{p["partition"]}"]')
    wait_until(f'the panel naming {p["topic"]}[{p["partition"]}]', lambda: cell.count() >= 1, timeout=60)


def check_banner(s):
    """When the JobManager stops answering, the banner says so (the JobManager is killed)."""
    s.goto("#/overview")
    s.page.locator("#content .stats").wait_for()
    expect(not s.page.locator("#banner.show").count(), "the banner shows while the JobManager answers")
    os.kill(s.params["jobmanager_pid"], 9)
    wait_until("the banner", lambda: s.page.locator("#banner.show").count() == 1, timeout=15)
    expect("not answering" in s.text("#banner"), f"the banner: {s.text('#banner')!r}")
    expect("unreachable" in s.text("#conn"), f"the side's status: {s.text('#conn')!r}")


CHECKS = {
    "overview_and_graph": check_overview_and_graph,
    "vertex_drilldown": check_vertex_drilldown,
    "back_pressure": check_back_pressure,
    "taskmanager_logs": check_taskmanager_logs,
    "configuration_and_timeline": check_configuration_and_timeline,
    "checkpoint_details": check_checkpoint_details,
    "jobmanager_configuration": check_jobmanager_configuration,
    "jobmanager": check_jobmanager,
    "submit_and_stop": check_submit_and_stop,
    "quiet_after_leaving": check_quiet_after_leaving,
    "watermark_lineage": check_watermark_lineage,
    "banner": check_banner,
}


def main():
    params = json.load(open(sys.argv[1]))
    ensure_tools()
    from playwright.sync_api import sync_playwright

    passed, failed = 0, 0
    with sync_playwright() as pw:
        s = Session(pw, params)
        try:
            for name in params["checks"]:
                t0 = time.time()
                try:
                    CHECKS[name](s)
                    passed += 1
                    print(f"ok {name} ({time.time() - t0:.1f} s)", flush=True)
                except Exception as e:
                    failed += 1
                    shot = os.path.join(s.scratch, f"{name}.png")
                    try:
                        s.page.screenshot(path=shot, full_page=True)
                    except Exception:
                        shot = "(no screenshot)"
                    reason = str(e) if isinstance(e, Failed) else traceback.format_exc()
                    print(f"FAILED {name}: {reason}\n  at {s.page.url}; screenshot {shot}", flush=True)
            if s.errors:
                failed += 1
                print("FAILED console: " + "\n  ".join(s.errors), flush=True)
            if s.bad:
                failed += 1
                print("FAILED server errors: " + "\n  ".join(s.bad), flush=True)
            if s.not_found:
                print("404 answers seen: " + ", ".join(sorted(s.not_found)), flush=True)
        finally:
            s.close()
    print(f"web UI checks: {passed} of {passed + failed} passed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
