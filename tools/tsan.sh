#!/usr/bin/env bash
# ThreadSanitizer over the suites that exercise threads (issue 14): the journal's and the ledger's
# concurrency tests, the workers' inbox ring, hosted cores, the reservation directory, thread-per-core
# end to end, pipelining and flooding through the server. A debug build with -sanitize=thread in its
# own scratch path (.build-tsan); any race report fails the run (TSan's report is printed).
#
# Known false positives are suppressed in tools/tsan-suppressions.txt: on this toolchain TSan does
# not see the ordering a contended `Synchronization.Mutex` gives (its futex wait and wake), so state
# touched only inside `withLock` is reported. Reproduce it alone: two threads, one appending to a
# struct inside `mutex.withLock` 20,000 times and one draining it, built with `swiftc
# -sanitize=thread`: "Swift access race" reports, and the right total. Thread leaks (worker threads
# a test leaves to the process's end) are not reported.
#
# Usage: tools/tsan.sh [FILTER]   (default: the suites above; FILTER is swift test's --filter)
# Run time: the build (several minutes the first time on 2 cores) plus a few minutes of tests.
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-"ConcurrencyTests|TaskRingTests|HostedCoreTests|ReservationDirectoryTests|ThreadPerCoreTests|PipeliningTests|FloodTests|GroupCommitTests|StableCompletionTests"}
echo "tsan.sh: building the tests with ThreadSanitizer (.build-tsan)" >&2
mkdir -p .build-tsan
swift build --build-tests --sanitize thread --scratch-path .build-tsan >.build-tsan/build.log 2>&1 ||
    { tail -40 .build-tsan/build.log; echo "tsan.sh: build failed" >&2; exit 2; }
# halt_on_error: the first race fails the run with its report; second_deadlock_stack for lock reports.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 report_thread_leaks=0 suppressions=$PWD/tools/tsan-suppressions.txt ${TSAN_OPTIONS:-}" \
    swift test --skip-build --sanitize thread --scratch-path .build-tsan --filter "$filter"
