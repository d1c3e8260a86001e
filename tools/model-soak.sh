#!/usr/bin/env bash
# Soaks the ledger's model-based tests: runs Tests/ATPLedgerModelTests (the engine against the
# reference model, plus the concurrency tests) over successive seeds for a bounded time, in a
# release build with its own scratch path, and stops at the first failure, printing the seed.
#
# Usage: tools/model-soak.sh [SECONDS] [FIRST_SEED] [STEPS]
#   SECONDS     time budget (default 300); the run in progress when it runs out is finished
#   FIRST_SEED  first seed (default: derived from the clock); seeds then go up by one
#   STEPS       random steps per seed (default 20000)
# Example: tools/model-soak.sh 600 1000
# Replay a failure: ATP_MODEL_SEED=<seed> ATP_MODEL_STEPS=<steps> \
#     swift test --scratch-path .build-model --filter ATPLedgerModelTests
# (a mismatch message also names the step; ATP_MODEL_STEPS=<step + 1> stops right after it).
set -euo pipefail
cd "$(dirname "$0")/.."

budget_seconds=${1:-300}
seed=${2:-$(( $(date +%s) % 1000000 * 1000 ))}
steps=${3:-20000}
scratch=.build-soak
log=$(mktemp -t model-soak.XXXXXX)
trap 'rm -f "$log"' EXIT

echo "model-soak: building (release, --scratch-path $scratch)" >&2
swift build --build-tests -c release --scratch-path "$scratch" >"$log" 2>&1 || { cat "$log"; echo "model-soak: build failed" >&2; exit 2; }

deadline=$(( $(date +%s) + budget_seconds ))
runs=0
while (( $(date +%s) < deadline )); do
    if ATP_MODEL_SEED=$seed ATP_MODEL_STEPS=$steps \
        swift test -c release --skip-build --scratch-path "$scratch" --filter ATPLedgerModelTests >"$log" 2>&1; then
        runs=$(( runs + 1 ))
        echo "model-soak: seed $seed passed ($steps steps)" >&2
        seed=$(( seed + 1 ))
    else
        grep -E "MODEL MISMATCH|seed=|Fatal error|Assertion|precondition|✘" "$log" | head -40 || true
        echo "model-soak: FAILED at seed $seed (steps $steps); full log follows" >&2
        tail -200 "$log"
        echo "model-soak: replay with ATP_MODEL_SEED=$seed ATP_MODEL_STEPS=$steps swift test --scratch-path .build-model --filter ATPLedgerModelTests" >&2
        exit 1
    fi
done
echo "model-soak: $runs seeds passed (last seed $(( seed - 1 ))), $steps steps each, within ${budget_seconds}s" >&2
