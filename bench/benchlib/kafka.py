"""Kafka for the end-to-end measurement: a broker from the playground's
launcher (playground/kafka/kafka.sh), a topic preloaded once with N click
events (flink-peer's ClickEventProducer), and the raw read ceiling of that
topic with kcat (librdkafka, C)."""

import os
import shutil
import subprocess
import time

from .cluster import Unavailable
from .flink import java, peer_jar, flink_home
from .procs import free_port, log

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH)
KAFKA_SH = os.path.join(ROOT, "playground", "kafka", "kafka.sh")


class Broker:
    def __init__(self, workdir):
        if not os.path.isfile(KAFKA_SH):
            raise Unavailable(f"no Kafka launcher at {KAFKA_SH}")
        self.dir = os.path.join(workdir, "kafka")
        self.port = None
        self.started = False

    @property
    def servers(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.port = free_port()
        cport = free_port()
        os.makedirs(self.dir, exist_ok=True)
        argv = ["bash", KAFKA_SH, "start", "--dir", self.dir, "--port", str(self.port),
                "--controller-port", str(cport), "--partitions", "2", "--heap", "1g",
                "--parent-pid", str(os.getpid())]
        self.started = True  # stop() even if start fails half-way
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise Unavailable(f"kafka.sh start failed: {out.stderr.strip()[-1500:]}")
        log(f"Kafka broker on {self.servers} ({self.dir})")

    def stop(self):
        if self.started:
            subprocess.run(["bash", KAFKA_SH, "stop", "--dir", self.dir], capture_output=True, timeout=120)
            self.started = False

    def preload(self, topic, events):
        """Writes `events` click events to a new 2-partition topic; returns seconds."""
        t0 = time.monotonic()
        # Flink's lib/ gives the producer its slf4j/log4j.
        cp = peer_jar() + ":" + os.path.join(flink_home(), "lib", "*")
        out = subprocess.run([java(), "-cp", cp, "dev.flowc.bench.ClickEventProducer",
                              "--bootstrap.servers", self.servers, "--topic", topic,
                              "--events", str(events), "--partitions", "2"],
                             capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(f"producing click events failed: {out.stdout[-1000:]} {out.stderr[-2000:]}")
        log(out.stdout.strip().splitlines()[-1])
        return time.monotonic() - t0


def kcat_bin():
    return shutil.which("kcat") or shutil.which("kafkacat")


def raw_read_seconds(servers, topic, events):
    """Seconds for kcat (librdkafka) to read the whole topic from the
    earliest offset to the end, payloads to /dev/null; None without kcat."""
    kcat = kcat_bin()
    if not kcat:
        return None
    t0 = time.monotonic()
    out = subprocess.run([kcat, "-C", "-b", servers, "-t", topic, "-o", "beginning", "-e", "-q",
                          "-f", "%s\n"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         timeout=3600)
    dt = time.monotonic() - t0
    if out.returncode != 0:
        raise RuntimeError(f"kcat failed: {out.stderr.decode(errors='replace')[-1000:]}")
    return dt
