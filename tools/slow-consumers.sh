#!/usr/bin/env bash
# Slow consumers against atpd (issue 14 item 1): N connections pipeline queries with about 80 KB
# replies and never read, while one healthy client times single-cell queries; prints the healthy
# client's latency alone, during and after, and the server's resident memory
# (tools/slow-consumers/slow_consumers.py does the talking, from docs/PROTOCOL.md alone).
#
# Usage: tools/slow-consumers.sh [CONSUMERS=16] [SECONDS=10] [-- atpd flags...]
#   e.g. tools/slow-consumers.sh 16 10 -- --thread-per-core
# Builds atpd (release, --scratch-path .build-bench) and runs `atpd --demo --in-memory` on port 7491.
# Run time: about 2 × SECONDS plus the build.
set -euo pipefail
cd "$(dirname "$0")/.."
consumers=${1:-16}
seconds=${2:-10}
shift $(( $# >= 2 ? 2 : $# ))
[[ ${1:-} == -- ]] && shift
[[ "$consumers" =~ ^[0-9]+$ && "$seconds" =~ ^[0-9]+$ ]] ||
    { echo "usage: tools/slow-consumers.sh [CONSUMERS=16] [SECONDS=10] [-- atpd flags...]" >&2; exit 64; }
command -v python3 >/dev/null || { SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 >/dev/null; }
work=$(mktemp -d -t slow-consumers.XXXXXX)
pid=""
cleanup() {
    [[ -n $pid ]] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "slow-consumers.sh: building atpd (release, --scratch-path .build-bench)" >&2
swift build -c release --product atpd --scratch-path .build-bench >"$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log"; exit 2; }
atpd="$(swift build -c release --scratch-path .build-bench --show-bin-path)/atpd"
"$atpd" --demo --in-memory --port 7491 --metrics-port 9491 "$@" >"$work/atpd.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    (exec 3<>/dev/tcp/127.0.0.1/7491) 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/atpd.log"; exit 1; }
    sleep 0.1
done
echo "slow-consumers.sh: atpd $* ($consumers slow consumers, load average $(cut -d' ' -f1-3 /proc/loadavg))"
python3 tools/slow-consumers/slow_consumers.py --port 7491 --pid "$pid" --consumers "$consumers" --seconds "$seconds"
