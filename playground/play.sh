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
# Variants, given first (together if you like):
#
#   bash playground/play.sh --ha       # + ZooKeeper and a second, standby JobManager
#                                      #   (REST 8082): kill the leader, watch the standby take over
#   bash playground/play.sh --s3       # + an S3 server (moto): checkpoints, savepoints
#                                      #   (and with --ha the HA job store) in s3://flowc-playground
#   bash playground/play.sh --ha --s3 down -v   # stop everything, the extras too
#
# Afterwards drive it with target/release/playground (ps, logs -f, kill,
# scale taskmanager=2, restart, down -v) and target/release/flowc.
#
# Settable by the environment (the tutorial test, tests/tutorial.rs, runs
# the variants on its own ports with its debug build):
#
#   FLOWC_PLAYGROUND_BIN=DIR           flowc and playground are in DIR: no build
#   FLOWC_PLAYGROUND_KAFKA_PORT        Kafka's client port [9092] (controller: the next)
#   FLOWC_PLAYGROUND_ZK_PORT           ZooKeeper's port with --ha [2181]
#   FLOWC_PLAYGROUND_S3_PORT           the S3 server's port with --s3 [9000]
#   FLOWC_PLAYGROUND_STANDBY_REST_PORT the standby JobManager's REST port [8082]
#   FLOWC_PLAYGROUND_STANDBY_RPC_PORT  and its RPC port [6124]
#   FLOWC_PLAYGROUND_WATCH_PID=PID     ZooKeeper and the S3 server stop when PID exits
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

HA=0
S3=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --ha) HA=1; shift ;;
        --s3) S3=1; shift ;;
        *) break ;;
    esac
done

# The variants' own processes and their configuration live beside the
# playground's state (which `down -v` deletes), not in it.
EXTRAS="${FLOWC_PLAYGROUND_DIR:-/tmp/flowc-playground}-extras"
ZK_PORT="${FLOWC_PLAYGROUND_ZK_PORT:-2181}"
S3_PORT="${FLOWC_PLAYGROUND_S3_PORT:-9000}"
BUCKET=flowc-playground
STANDBY_REST="${FLOWC_PLAYGROUND_STANDBY_REST_PORT:-8082}"
STANDBY_RPC="${FLOWC_PLAYGROUND_STANDBY_RPC_PORT:-6124}"
BIN="${FLOWC_PLAYGROUND_BIN:-}"
FLOWC="${BIN:-target/release}/flowc"
PLAYGROUND="${BIN:-target/release}/playground"
KAFKA_PORT=()
if [[ -n "${FLOWC_PLAYGROUND_KAFKA_PORT:-}" ]]; then KAFKA_PORT=(--kafka-port "$FLOWC_PLAYGROUND_KAFKA_PORT"); fi
WATCH=()
if [[ -n "${FLOWC_PLAYGROUND_WATCH_PID:-}" ]]; then WATCH=(--parent-pid "$FLOWC_PLAYGROUND_WATCH_PID"); fi
VARIANTS=""
if ((HA)); then VARIANTS+="--ha "; fi
if ((S3)); then VARIANTS+="--s3"; fi

if [[ -z "$BIN" ]]; then
    echo "==> Building flowc and the playground (release)"
    cargo build --release -p flowc -p flowc-playground
fi

echo "==> Fetching Kafka"
bash playground/kafka/kafka.sh fetch
if ((HA)); then
    echo "==> Fetching ZooKeeper"
    bash playground/zookeeper/zookeeper.sh fetch
fi
if ((S3)); then
    echo "==> Installing the S3 server (moto)"
    bash playground/s3/s3.sh install
fi

# The flowc configuration: the playground's, plus the variants' keys.
CONFIG=()
if ((HA || S3)); then
    mkdir -p "$EXTRAS"
    CONF="$EXTRAS/flowc.yaml"
    if ((S3)); then
        # The base config's local checkpoint and savepoint directories give
        # way to the bucket's (a key twice is invalid YAML).
        grep -Ev '^state\.(checkpoints|savepoints)\.dir:' playground/conf/flowc.yaml >"$CONF"
    else
        cp playground/conf/flowc.yaml "$CONF"
    fi
    if ((S3)); then
        cat >>"$CONF" <<EOT
# --s3: checkpoints and savepoints on the playground's S3 server.
state.checkpoints.dir: s3://$BUCKET/checkpoints
state.savepoints.dir: s3://$BUCKET/savepoints
s3.endpoint: http://127.0.0.1:$S3_PORT
s3.access-key: playground
s3.secret-key: playground
s3.path.style.access: true
EOT
    fi
    if ((HA)); then
        if ((S3)); then storage="s3://$BUCKET/ha"; else storage="$EXTRAS/ha"; fi
        cat >>"$CONF" <<EOT
# --ha: two JobManagers share ZooKeeper; the first leads, the second
# (REST $STANDBY_REST) stands by.
high-availability.type: zookeeper
high-availability.zookeeper.quorum: 127.0.0.1:$ZK_PORT
high-availability.storageDir: $storage
high-availability.cluster-id: /playground
high-availability.zookeeper.client.session-timeout: 6000
EOT
    fi
    CONFIG=(--config "$CONF")
fi

start_extras() {
    if ((S3)); then
        bash playground/s3/s3.sh start --port "$S3_PORT" --dir "$EXTRAS/s3" "${WATCH[@]}"
        curl -fsS -X PUT "http://127.0.0.1:$S3_PORT/$BUCKET" >/dev/null
        echo "S3 server on 127.0.0.1:$S3_PORT, bucket $BUCKET"
    fi
    if ((HA)); then
        bash playground/zookeeper/zookeeper.sh start --dir "$EXTRAS/zookeeper" --port "$ZK_PORT" "${WATCH[@]}"
    fi
}

start_standby() {
    "$FLOWC" jobmanager --config "$CONF" -D "rest.port=$STANDBY_REST" -D "jobmanager.rpc.port=$STANDBY_RPC" \
        >"$EXTRAS/jobmanager-standby.log" 2>&1 &
    echo $! >"$EXTRAS/jobmanager-standby.pid"
    echo "Standby JobManager: pid $(cat "$EXTRAS/jobmanager-standby.pid"), REST http://127.0.0.1:$STANDBY_REST, log $EXTRAS/jobmanager-standby.log"
}

stop_extras() {
    if [[ -f "$EXTRAS/jobmanager-standby.pid" ]]; then
        kill "$(cat "$EXTRAS/jobmanager-standby.pid")" 2>/dev/null || true
        rm -f "$EXTRAS/jobmanager-standby.pid"
    fi
    if ((HA)) && [[ -d "$EXTRAS/zookeeper" ]]; then bash playground/zookeeper/zookeeper.sh stop --dir "$EXTRAS/zookeeper" || true; fi
    if ((S3)) && [[ -d "$EXTRAS/s3" ]]; then bash playground/s3/s3.sh stop --dir "$EXTRAS/s3" || true; fi
}

if [[ $# -gt 0 ]]; then
    if [[ "$1" == down ]]; then
        # No --config needed: the launcher takes the one `up` saved. (With
        # --s3 it leaves the bucket alone: the S3 server keeps its objects
        # in memory, and they go with it below.)
        "$PLAYGROUND" "$@"
        stop_extras
        if [[ " $* " == *" -v "* ]]; then rm -rf "$EXTRAS"; fi
        exit 0
    fi
    exec "$PLAYGROUND" "${CONFIG[@]}" "$@"
fi

if ((HA || S3)); then
    echo "==> Starting the extras"
    start_extras
fi
echo "==> Starting the playground"
"$PLAYGROUND" "${CONFIG[@]}" "${KAFKA_PORT[@]}" up -d
if ((HA)); then start_standby; fi
echo
"$PLAYGROUND" "${CONFIG[@]}" ps
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
if ((HA)); then
    cat <<EOT

High availability (--ha): ZooKeeper on 127.0.0.1:$ZK_PORT, a standby
JobManager at http://127.0.0.1:$STANDBY_REST (it answers with the leader's REST).

  $PLAYGROUND kill jobmanager        kill the leader: after the session timeout (6 s)
                                         the standby leads and resumes the job from its
                                         latest checkpoint
  $FLOWC list -m 127.0.0.1:$STANDBY_REST the job, on the new leader
  $PLAYGROUND up -d jobmanager       the killed one again, as the new standby
  bash playground/play.sh $VARIANTS down -v
                                         stop everything, the standby and ZooKeeper too
EOT
fi
if ((S3)); then
    cat <<EOT

Object storage (--s3): checkpoints and savepoints in s3://$BUCKET on
http://127.0.0.1:$S3_PORT (moto, in memory).

  curl -s 'http://127.0.0.1:$S3_PORT/$BUCKET?list-type=2&prefix=checkpoints/'
                                         the retained checkpoint's objects
  $FLOWC stop -m 127.0.0.1:${REST:-8081} <job-id>
                                         stop with a savepoint in s3://$BUCKET/savepoints
EOT
fi
