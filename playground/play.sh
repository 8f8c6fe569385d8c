#!/usr/bin/env bash
# playground/play.sh — THE playground command: builds flowc and the
# playground tools in release mode, fetches Apache Kafka (once, from Maven
# Central), and starts the whole Operations Playground detached:
# Kafka, a JobManager, a TaskManager, the click-event generator and the
# client that submits Click Event Count.
#
#   bash playground/play.sh            # build + `playground up -d`
#   bash playground/play.sh ARGS…      # build + `playground ARGS…` (e.g. ps, down -v)
#
# Afterwards drive it with target/release/playground (ps, logs -f, kill,
# scale taskmanager=2, restart, down -v) and target/release/flowc.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "==> Building flowc and the playground (release)"
cargo build --release -p flowc -p flowc-playground

echo "==> Fetching Kafka"
bash playground/kafka/kafka.sh fetch

PLAYGROUND=target/release/playground
if [[ $# -gt 0 ]]; then
    exec "$PLAYGROUND" "$@"
fi

echo "==> Starting the playground"
"$PLAYGROUND" up -d
echo
"$PLAYGROUND" ps
REST=$(sed -n 's/^rest\.port:[[:space:]]*\([0-9]*\).*/\1/p' playground/conf/flowc.yaml)
cat <<EOT

The playground runs. Web UI and REST API: http://127.0.0.1:${REST:-8081}

  $PLAYGROUND ps                         services and their state
  $PLAYGROUND logs -f jobmanager         follow a service's output
  $PLAYGROUND logs -f taskmanager
  bash playground/kafka/kafka.sh consume --port 9092 --topic output
                                         the job's output (windowed counts)
  target/release/flowc list -m 127.0.0.1:${REST:-8081}
                                         running jobs
  $PLAYGROUND kill taskmanager           simulate a failure; up -d taskmanager recovers
  $PLAYGROUND scale taskmanager=2        add TaskManager slots
  $PLAYGROUND down -v                    stop everything and delete its data
EOT
