#!/usr/bin/env bash
# kill -9 soak of atpd's durability (docs/DURABILITY.md, "Crash test"): N cycles of load (ingest
# batches; single- and cross-shard reserve, commit, release) from clients that record every
# acknowledged operation in a reference model, SIGKILL at a random moment, restart on the same data
# directory, and checks (every acknowledged operation there; no unacknowledged partial reservation
# holding units; resent batches not double counted). Stops at the first violation, printing the seed
# and keeping the data directory. The core is tools/crash-soak/Core (shared with the test suite's
# CrashTests).
#
# Usage: tools/crash-soak.sh [CYCLES] [SECONDS] [SEED] [-- extra crash-soak arguments]
#   CYCLES   kill -9 cycles (default 50)
#   SECONDS  time budget (default 300): no cycle starts after it; the whole run is cut off at
#            SECONDS + 120 whatever happens
#   SEED     seed (default random, printed); the same seed repeats the same operations and kill
#            moments (thread timing still varies)
#   extra    --snapshot-interval-seconds N, --durability sync|none|interval:<ms>, --data-dir DIR
# Environment: CONFIGURATION=debug|release (default release), SCRATCH (default .build-crash-soak).
# Example: tools/crash-soak.sh 200 900 -- --snapshot-interval-seconds 1
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=${1:-50}
budget_seconds=${2:-300}
seed=${3:-}
shift $(( $# < 3 ? $# : 3 )) || true
[[ "${1:-}" == "--" ]] && shift
configuration=${CONFIGURATION:-release}
scratch=${SCRATCH:-.build-crash-soak}
log=$(mktemp -t crash-soak.XXXXXX)
trap 'rm -f "$log"' EXIT

echo "crash-soak: building atpd and crash-soak ($configuration, --scratch-path $scratch)" >&2
for product in atpd crash-soak; do
    swift build -c "$configuration" --scratch-path "$scratch" --product "$product" >"$log" 2>&1 \
        || { cat "$log"; echo "crash-soak: build of $product failed" >&2; exit 2; }
done
bin=$(swift build -c "$configuration" --scratch-path "$scratch" --show-bin-path)

arguments=(--cycles "$cycles" --seconds "$budget_seconds" --atpd "$bin/atpd")
[[ -n "$seed" ]] && arguments+=(--seed "$seed")
exec timeout --signal=KILL $(( budget_seconds + 120 )) "$bin/crash-soak" "${arguments[@]}" "$@"
