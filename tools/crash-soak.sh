#!/usr/bin/env bash
# kill -9 soak of atpd's durability (docs/DURABILITY.md, "Crash test"): N cycles of load from clients
# that record every acknowledged operation in a reference model, SIGKILL at a random moment,
# restart on the same data directory, and checks. The load (seeded): ingest batches of 1-8 receives
# and resends of acknowledged ones; reservations of 1-3 lines on distinct SKUs across shards
# (all-or-nothing and partial, location and channel lines, some with 300-1000 ms ttls so that
# expiries land around the kill); reserve retries of the same id; commits and releases, also of
# committed reservations; or, with --workload storm, 2-line reservations reserved, committed and
# released in a loop. The checks: atpd starts again; every acknowledged reservation is known, with
# its grants and a state its acknowledgements and its ttl allow; commit/release never answer
# unknownReservation for one; a reserve retry replays; each cell's reserved and committed equal the
# reservations found held and committed there; onHand within the unknown batches, then exact after
# their resend. Prints a report per cycle and a summary; stops at the first violation (or, with
# --keep-going, at the end) printing the seed and keeping the data directory. The core is
# tools/crash-soak/Core (shared with the test suite's CrashTests).
#
# Usage: tools/crash-soak.sh [CYCLES] [SECONDS] [SEED] [-- extra crash-soak arguments]
#   CYCLES   kill -9 cycles (default 50)
#   SECONDS  time budget (default 300): no cycle starts after it; the whole run is cut off at
#            SECONDS + 120 whatever happens
#   SEED     seed (default random, printed); the same seed repeats the same operations and kill
#            moments (thread timing still varies)
#   extra    --snapshot-interval-seconds N, --durability sync|none|interval:<ms>, --data-dir DIR,
#            --workload mixed|storm|alternate, --clients N, --short-ttl-percent P, --no-channel,
#            --expiry-margin-ms M, --keep-going, --thread-per-core (atpd runs its shards on its event loops), --atpd PATH (test another build of atpd)
# Environment: CONFIGURATION=debug|release (default release), SCRATCH (default .build-crash-soak).
# Examples: tools/crash-soak.sh 200 900 -- --snapshot-interval-seconds 1
#           tools/crash-soak.sh 40 600 -- --workload storm --keep-going
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

# With --atpd among the extra arguments, that atpd is tested and only crash-soak is built.
products=(atpd crash-soak)
for argument in "$@"; do [[ "$argument" == "--atpd" ]] && products=(crash-soak); done
echo "crash-soak: building ${products[*]} ($configuration, --scratch-path $scratch)" >&2
for product in "${products[@]}"; do
    swift build -c "$configuration" --scratch-path "$scratch" --product "$product" >"$log" 2>&1 \
        || { cat "$log"; echo "crash-soak: build of $product failed" >&2; exit 2; }
done
bin=$(swift build -c "$configuration" --scratch-path "$scratch" --show-bin-path)

# An --atpd among the extra arguments comes later and wins.
arguments=(--cycles "$cycles" --seconds "$budget_seconds" --atpd "$bin/atpd")
[[ -n "$seed" ]] && arguments+=(--seed "$seed")
exec timeout --signal=KILL $(( budget_seconds + 120 )) "$bin/crash-soak" "${arguments[@]}" "$@"
