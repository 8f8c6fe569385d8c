#!/usr/bin/env bash
# playground/s3/s3.sh — a real S3-protocol server for tests and the
# playground: moto's standalone server (PyPI `moto[server]`), installed into
# a virtualenv in the cache and run as its own process on loopback.
#
#   s3.sh install                  create the venv (once; ~5 min cold)
#   s3.sh start --port P --dir D [--parent-pid PID [--cleanup]]
#                                  start the server on 127.0.0.1:P, log and
#                                  pid in D; with --parent-pid a watchdog
#                                  stops it (and with --cleanup deletes D)
#                                  as soon as PID is gone
#   s3.sh stop --dir D             stop the server started in D
#
# The server keeps objects in memory: a restart loses them, which is what
# a test run wants. Credentials are not checked; any access key works.
set -euo pipefail

MOTO_VERSION=5.2.1
CACHE="${FLOWC_CACHE:-$HOME/.cache/flowc}"
VENV="$CACHE/moto-$MOTO_VERSION"

die() { echo "s3.sh: $*" >&2; exit 1; }

# The venv is built where it stays: pip writes its absolute path into the
# scripts' #! lines, so a venv built elsewhere and moved has scripts that
# cannot start. A marker says it is whole; a lock keeps two installs apart.
install() {
    [[ -f "$VENV/.installed" ]] && return 0
    command -v python3 >/dev/null || die "python3 is needed"
    mkdir -p "$CACHE"
    exec 9>"$VENV.lock"
    flock 9
    if [[ ! -f "$VENV/.installed" ]]; then
        rm -rf "$VENV" "$VENV.tmp"
        python3 -m venv "$VENV" || die "python3 -m venv failed (install python3-venv)"
        "$VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION"
        touch "$VENV/.installed"
    fi
    exec 9>&-
}

start() {
    local port="" dir="" parent="" cleanup=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --port) port=${2:?--port needs a value}; shift 2 ;;
            --dir) dir=${2:?--dir needs a value}; shift 2 ;;
            --parent-pid) parent=${2:?--parent-pid needs a value}; shift 2 ;;
            --cleanup) cleanup=1; shift ;;
            *) die "unknown option $1" ;;
        esac
    done
    [[ -n "$port" && -n "$dir" ]] || die "start needs --port and --dir"
    ((cleanup == 0)) || [[ -n "$parent" ]] || die "--cleanup needs --parent-pid"
    if [[ -n "$parent" ]]; then kill -0 "$parent" 2>/dev/null || die "--parent-pid $parent is not running"; fi
    install
    mkdir -p "$dir"
    setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/s3.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/s3.pid"
    if [[ -n "$parent" ]]; then
        setsid bash -c '
            parent=$1 spid=$2 dir=$3 cleanup=$4
            while kill -0 "$parent" 2>/dev/null && kill -0 "$spid" 2>/dev/null; do sleep 0.5; done
            kill "$spid" 2>/dev/null || true
            for _ in $(seq 1 20); do kill -0 "$spid" 2>/dev/null || break; sleep 0.25; done
            kill -9 "$spid" 2>/dev/null || true
            if [[ $cleanup == 1 ]]; then rm -rf "$dir"; fi
        ' s3-watchdog "$parent" "$pid" "$dir" "$cleanup" </dev/null >/dev/null 2>&1 &
        echo $! >"$dir/watchdog.pid"
    fi
    for _ in $(seq 1 120); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "127.0.0.1:$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$dir/s3.log" >&2; die "the server exited"; }
        sleep 0.25
    done
    cat "$dir/s3.log" >&2
    die "the server did not listen on $port within 30 s"
}

stop() {
    local dir=""
    [[ "${1:-}" == --dir ]] && dir=${2:-}
    [[ -n "$dir" ]] || die "stop needs --dir"
    if [[ -f "$dir/watchdog.pid" ]]; then kill "$(<"$dir/watchdog.pid")" 2>/dev/null || true; fi
    if [[ -f "$dir/s3.pid" ]]; then kill "$(<"$dir/s3.pid")" 2>/dev/null || true; fi
    rm -f "$dir/s3.pid" "$dir/watchdog.pid"
}

cmd=${1:-}
shift || true
case "$cmd" in
    install) install ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    *) die "usage: s3.sh install | start --port P --dir D [--parent-pid PID [--cleanup]] | stop --dir D" ;;
esac
