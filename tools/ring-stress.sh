#!/usr/bin/env bash
# Runs the workers' inbox ring hand-over stress test (TaskRingTests) in a release build, with many
# more tasks than the suite's run and for several rounds. Only an optimized build exercises the code
# the optimizer produced: the ring's retain once sank below the store that publishes a task, and
# this run with the fix taken out crashed in 1 of 3 rounds of 30M tasks per producer ("deallocated
# with non-zero retain count"); the suite's debug run cannot see that.
#
# Usage: tools/ring-stress.sh [ROUNDS] [TASKS_PER_PRODUCER]
#   ROUNDS              rounds, each a fresh process (default 5)
#   TASKS_PER_PRODUCER  tasks each of the 3 producers hands over per round (default 30000000,
#                       about 10 s per round on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-5}
tasks=${2:-30000000}
scratch=.build-release-tests
log=$(mktemp -d -t ring-stress.XXXXXX)
trap 'rm -rf "$log"' EXIT

echo "ring-stress: building the tests (release, testable, --scratch-path $scratch)" >&2
swift build -c release --scratch-path "$scratch" --build-tests -Xswiftc -enable-testing >"$log/build" 2>&1 \
    || { cat "$log/build"; echo "ring-stress: build failed" >&2; exit 2; }

failed=0
for (( round = 1; round <= rounds; round++ )); do
    if ATP_RING_STRESS_TASKS=$tasks swift test -c release --scratch-path "$scratch" -Xswiftc -enable-testing \
        --skip-build --filter TaskRingTests >"$log/round" 2>&1; then
        echo "ring-stress: round $round of $rounds: passed ($tasks tasks per producer)"
    else
        failed=$(( failed + 1 ))
        echo "ring-stress: round $round of $rounds: FAILED" >&2
        grep -E "✘|deallocated|crashed|Fatal" "$log/round" | head -5 >&2 || true
    fi
done
echo "ring-stress: $failed of $rounds rounds failed"
(( failed == 0 ))
