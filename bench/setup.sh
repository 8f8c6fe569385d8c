#!/usr/bin/env bash
# One-time set-up of the flowc ↔ Flink benchmark (bench/run.sh downloads
# nothing): Apache Flink 2.3's jars from PyPI (apache-flink-libraries), the
# Flink job jar (bench/flink-peer, Maven), the Kafka broker's jars
# (playground/kafka/kafka.sh fetch) and kcat (Debian) for the raw Kafka read
# ceiling. Everything goes to ${FLOWC_BENCH_CACHE:-bench/.cache}, except
# Kafka's jars (kafka.sh's own cache) and kcat (apt). A second call is quick.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cache="${FLOWC_BENCH_CACHE:-$here/.cache}"
flink_version=2.3.0

mkdir -p "$cache"
if [[ ! -f "$cache/pyflink/pyflink/lib/flink-dist-$flink_version.jar" ]]; then
    echo "setup: installing apache-flink-libraries==$flink_version into $cache/pyflink"
    python3 -m pip install --quiet --no-deps --disable-pip-version-check \
        --target "$cache/pyflink" "apache-flink-libraries==$flink_version"
fi
test -f "$cache/pyflink/pyflink/lib/flink-dist-$flink_version.jar"
echo "setup: Flink $flink_version jars in $cache/pyflink/pyflink/lib"

echo "setup: building bench/flink-peer"
mvn -q -B -f "$here/flink-peer/pom.xml" package -DskipTests
ls "$here/flink-peer/target/flink-peer-0.1.0.jar"

if [[ -f "$root/playground/kafka/kafka.sh" ]]; then
    bash "$root/playground/kafka/kafka.sh" fetch
else
    echo "setup: no playground/kafka/kafka.sh yet; the Kafka measurement will be skipped"
fi

if ! command -v kcat >/dev/null 2>&1 && ! command -v kafkacat >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing kcat (Debian) for the raw Kafka read ceiling"
        apt-get install -y -qq kcat >/dev/null || { apt-get update -qq && apt-get install -y -qq kcat >/dev/null; } \
            || echo "setup: could not install kcat; the raw read ceiling will be skipped"
    else
        echo "setup: kcat not found (apt-get install kcat); the raw read ceiling will be skipped"
    fi
fi

flowc="${FLOWC_BIN:-$root/target/release/flowc}"
if [[ ! -x "$flowc" ]]; then
    echo "setup: no flowc binary at $flowc: build it (cargo build --release) or set FLOWC_BIN"
fi
echo "setup: done"
