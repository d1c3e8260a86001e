#!/usr/bin/env bash
# Network figures of issue 3, with their baselines measured in the same run:
#   1. the kernel's floor: tools/pingpong (C, 48-byte messages over loopback), client and server on
#      different cores, then on one core;
#   2. Redis (Debian's redis-server on loopback): redis-benchmark GET at depth 64 (-P 64, its
#      default 50 clients) and unpipelined (-P 1);
#   3. atpd --demo (release build) measured by tools/atp-load: unpipelined round trips, pipelined
#      single-cell queries at depth 64 (1 connection, and 50 connections like redis-benchmark),
#      batched queries (1,000 cells a frame) and batched ingest (1,000 events a frame).
# Every atp-load scenario runs ROUNDS times; the median round is reported. Bounded run time:
# about ROUNDS × 6 scenarios × (SECONDS + 2) s plus the builds.
#
# Usage: tools/netbench.sh [SECONDS=5] [ROUNDS=3]
# Needs: redis-server, redis-tools (installed here when missing), cc.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${2:-3}
port=7419
redis_port=6399
work=$(mktemp -d -t netbench.XXXXXX)
atpd_pid=""
redis_pid=""
cleanup() {
    [[ -n "$atpd_pid" ]] && kill "$atpd_pid" 2>/dev/null && wait "$atpd_pid" 2>/dev/null || true
    [[ -n "$redis_pid" ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi

echo "netbench: building (release)" >&2
swift build -c release --product atpd >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 2; }
swift build -c release --product atp-load >>"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 2; }
bin=$(swift build -c release --show-bin-path)
cc -O2 -pthread -o "$work/pingpong" tools/pingpong/pingpong.c

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "== floor: C ping-pong, 48 bytes over loopback (20,000 round trips)"
"$work/pingpong" 20000 0 1 48 | tee "$work/floor.txt" | sed 's/^/   /'
"$work/pingpong" 20000 0 0 48 | sed 's/^/   /'
floor_p99=$(grep -o 'p99 [0-9.]*' "$work/floor.txt" | cut -d' ' -f2)

echo "== Redis $(redis-server --version | grep -o 'v=[0-9.]*')"
redis-server --port $redis_port --save "" --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p $redis_port ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p $redis_port set key:__rand_int__ x >/dev/null
redis_p64=$(for _ in $(seq "$rounds"); do
    redis-benchmark -p $redis_port -P 64 -t get -n 4000000 -q | grep -o '[0-9.]* requests per second' | cut -d' ' -f1
done | median)
redis_p1=$(for _ in $(seq "$rounds"); do
    redis-benchmark -p $redis_port -P 1 -t get -n 300000 -q | grep -o '[0-9.]* requests per second' | cut -d' ' -f1
done | median)
redis_c1=$(redis-benchmark -p $redis_port -P 1 -c 1 -t get -n 50000 -q | grep -o '[0-9.]* requests per second' | cut -d' ' -f1)
echo "   GET -P 64 (50 clients): $redis_p64 /s    GET -P 1 (50 clients): $redis_p1 /s    GET -P 1 -c 1: $redis_c1 /s"
kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; redis_pid=""

echo "== atpd --demo (release), measured by atp-load, median of $rounds rounds of ${seconds}s"
"$bin/atpd" --demo --port $port >"$work/atpd.log" 2>&1 &
atpd_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

# run_scenario NAME ARGS...: prints the median round's JSON fields.
run_scenario() {
    local name=$1; shift
    for _ in $(seq "$rounds"); do
        "$bin/atp-load" --port $port --seconds "$seconds" --json 1 "$@"
    done >"$work/$name.json"
    python3 - "$work/$name.json" "$name" <<'EOF'
import json, sys
rounds = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
rounds.sort(key=lambda r: r["itemsPerSecond"])
m = rounds[len(rounds) // 2]
all_rounds = ", ".join("{:,.0f}".format(r["itemsPerSecond"]) for r in rounds)
print(f'   {sys.argv[2]:<34} {m["itemsPerSecond"]:>12,.0f} items/s  {m["requestsPerSecond"]:>10,.0f} req/s  '
      f'p50 {m["p50Microseconds"]} µs  p99 {m["p99Microseconds"]} µs  errors {m["errors"]}  (rounds: {all_rounds})')
with open(sys.argv[1] + ".median", "w") as out:
    json.dump(m, out)
EOF
}
run_scenario rtt --scenario rtt
run_scenario pipelined-1 --scenario pipelined --depth 64
run_scenario pipelined-50 --scenario pipelined --depth 64 --connections 50
run_scenario batch --scenario batch --batch 1000 --depth 4
run_scenario ingest --scenario ingest --batch 1000 --depth 4
echo "   (rtt: 1 connection, depth 1; pipelined-1/-50: 1 or 50 connections at depth 64; batch: 1,000 cells a"
echo "    frame, 4 frames in flight; ingest: 1,000 events a frame, 4 in flight, durability off)"

python3 - "$work" "$redis_p64" "$floor_p99" <<'EOF'
import json, sys
work, redis_p64, floor_p99 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
m = {name: json.load(open(f"{work}/{name}.json.median")) for name in ["rtt", "pipelined-1", "pipelined-50", "batch", "ingest"]}
print("== against the goals (ratios from this run)")
print(f'   pipelined depth 64, 50 conn / Redis GET -P 64: {m["pipelined-50"]["itemsPerSecond"] / redis_p64:.2f}  (goal >= 1)')
print(f'   pipelined depth 64, 1 conn / Redis GET -P 64:  {m["pipelined-1"]["itemsPerSecond"] / redis_p64:.2f}')
print(f'   rtt p99 / C floor p99: {m["rtt"]["p99Microseconds"] / floor_p99:.2f}  (goal <= 1.3)')
print(f'   batched queries: {m["batch"]["itemsPerSecond"] / 1e6:.2f} M answers/s (goal >= 10)')
print(f'   ingest: {m["ingest"]["itemsPerSecond"] / 1e6:.2f} M events/s (goal >= 5)')
EOF
