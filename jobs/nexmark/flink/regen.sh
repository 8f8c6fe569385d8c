#!/usr/bin/env bash
# Regenerates the Nexmark goldens, tests/nexmark/golden/qN.jsonl: the
# results of Apache Flink 2.3's SQL engine for each query of this folder
# (qN.sql) on the events of tests/nexmark/golden/SETTINGS, written by
# `flowc nexmark-gen` as JSON lines and read with Flink's filesystem
# connector and json format, event time from `dateTime` with watermarks 4 s
# behind (as Nexmark's DDL). Rows are sorted; an updating query's rows are
# its final table (its changelog applied).
#
#   jobs/nexmark/flink/regen.sh [q0 q1 …]     (default: every qN.sql here but q12)
#
# Needs Java 17 and Flink's lib/ (FLINK_LIB, else FLOWC_TEST_FLINK_LIB, else
# ~/.cache/flowc/flink-2.3.0/pyflink/lib) and a built flowc (FLOWC, else
# target/debug/flowc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
lib=${FLINK_LIB:-${FLOWC_TEST_FLINK_LIB:-$HOME/.cache/flowc/flink-2.3.0/pyflink/lib}}
flowc=${FLOWC:-$root/target/debug/flowc}
golden=$root/tests/nexmark/golden
# shellcheck source=/dev/null
source "$golden/SETTINGS"

[ -x "$flowc" ] || { echo "no flowc at $flowc: cargo build first (or set FLOWC)" >&2; exit 1; }
[ -f "$lib/flink-dist-2.3.0.jar" ] || { echo "no Flink 2.3 lib/ at $lib (set FLINK_LIB)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/flowc-nexmark-regen.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$flowc" nexmark-gen --events "$EVENTS" --rate "$RATE" --seed "$SEED" --out "$work/data"
javac -nowarn -cp "$lib/*" -d "$work/classes" "$here/NexmarkGolden.java" "$here/NexmarkSubmit.java"

if [ $# -gt 0 ]; then
    queries=("$@")
else
    queries=()
    for f in "$here"/q*.sql; do
        q=$(basename "$f" .sql)
        # q12 windows by processing time: no golden (the benchmark runs it).
        [ "$q" = q12 ] || queries+=("$q")
    done
fi

# Flink's own env.java.opts.all (the config.yaml packaged in flink-dist).
opts=(
    --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED
    --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens=java.base/java.text=ALL-UNNAMED --add-opens=java.base/java.time=ALL-UNNAMED
    --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED
)
java "${opts[@]}" -Xmx1g -cp "$lib/*:$work/classes" NexmarkGolden "$work/data" "$here" "$golden" "${queries[@]}"
