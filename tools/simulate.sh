#!/usr/bin/env bash
# Runs the deterministic simulator (docs/SIMULATOR.md) over many seeds in a release build, in
# parallel processes over disjoint seed ranges, for a bounded time; stops at the first failing seed
# and prints the command that replays it.
#
# Usage: tools/simulate.sh [SEEDS] [SECONDS] [FIRST_SEED] [PROCESSES]
#   SEEDS       seeds to run in all (default 10000)
#   SECONDS     time budget (default 600): no seed starts after it
#   FIRST_SEED  first seed (default 1); the range is FIRST_SEED ..< FIRST_SEED + SEEDS
#   PROCESSES   parallel processes, each with its own part of the range (default: the cores)
# Example: tools/simulate.sh 100000 7200 1 2
# Replay one seed: swift run -c release atp-sim --seed N (ATP_SIM_TRACE=1 prints every step)
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=${1:-10000}
budget_seconds=${2:-600}
first=${3:-1}
processes=${4:-$(nproc)}
scratch=.build-release
log=$(mktemp -d -t simulate.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$log"' EXIT

echo "simulate: building atp-sim (release, --scratch-path $scratch)" >&2
swift build -c release --scratch-path "$scratch" --product atp-sim >"$log/build" 2>&1 \
    || { cat "$log/build"; echo "simulate: build failed" >&2; exit 2; }
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)

per=$(( (seeds + processes - 1) / processes ))
pids=()
for (( p = 0; p < processes; p++ )); do
    start=$(( first + p * per ))
    count=$(( per < seeds - p * per ? per : seeds - p * per ))
    (( count > 0 )) || continue
    "$bin/atp-sim" --first "$start" --seeds "$count" --seconds "$budget_seconds" >"$log/$p" 2>&1 &
    pids+=($!)
done
status=0
for (( p = 0; p < ${#pids[@]}; p++ )); do
    wait "${pids[$p]}" || status=1
    tail -n 3 "$log/$p"
done
uptime
exit $status
