#!/usr/bin/env bash
# flowc vs Apache Flink 2.3 on this machine: see bench/README.md.
#   bench/run.sh [--smoke] [--events N] [--runs 3] [--only core|kafka|start|recovery|limit|nexmark|failover|sessions|running|interval-join]
# Run bench/setup.sh once first (it installs Flink's jars and builds the
# Flink job); this script downloads nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/harness.py" "$@"
