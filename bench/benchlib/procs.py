"""Processes the harness starts: free ports, process groups, RSS sampling, REST."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    """A free TCP port on 127.0.0.1, avoiding the playground's well-known ones."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in (8081, 6123, 9092, 9093):
            return port


class Procs:
    """Every process the harness starts, each in its own process group, so
    that stop_all() (called from a finally block and on SIGINT/SIGTERM) ends
    them and their children by pid."""

    def __init__(self):
        self.live = []

    def start(self, argv, log_path, env=None, cwd=None):
        out = open(log_path, "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd, start_new_session=True)
        out.close()
        p.log_path = log_path
        self.live.append(p)
        return p

    def kill(self, p, sig=signal.SIGKILL):
        """Send sig to p's process group (p leads it) without waiting."""
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, p, timeout=10):
        if p.poll() is None:
            self.kill(p, signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(p, signal.SIGKILL)
                p.wait(5)
        else:
            self.kill(p, signal.SIGKILL)  # stray children of a dead leader
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in list(reversed(self.live)):
            try:
                self.stop(p)
            except Exception as e:  # keep stopping the others
                log(f"could not stop pid {p.pid}: {e}")


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


class RssSampler:
    """Samples VmRSS of named pids every 200 ms and keeps each one's peak."""

    def __init__(self, pids, interval=0.2):
        self.pids = dict(pids)
        self.peak = {name: 0 for name in self.pids}
        self.interval = interval
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def _sample(self):
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], rss_kib(pid))

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()


def http(method, url, body=None, headers=None, timeout=30):
    """JSON over HTTP; returns (status, parsed body or text)."""
    data = None
    headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif body is not None:
        data = body
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def get_json(url, timeout=5):
    """GET url; None when nothing answers yet."""
    try:
        status, body = http("GET", url, timeout=timeout)
    except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError, OSError):
        return None
    return body if status == 200 and isinstance(body, dict) else None


def multipart_file(field, path):
    boundary = "----flowcbench" + os.urandom(8).hex()
    with open(path, "rb") as f:
        content = f.read()
    name = os.path.basename(path)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/x-java-archive\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
