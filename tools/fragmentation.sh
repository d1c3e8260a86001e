#!/usr/bin/env bash
# atpd's memory after a long mixed run, jemalloc against glibc malloc (issue 13). Builds atpd twice
# (release): with jemalloc, the default (--scratch-path .build-bench), and with ATP_ALLOCATOR=glibc
# (--scratch-path .build-bench-glibc); then, for each allocator in turn (the order alternates per
# round), starts `atpd --demo --in-memory` on port 7496 (metrics 9496), remembering at most 1,000
# finished reservations per shard (so the live state stops growing and churns), and runs the same load:
#   mixed     SECONDS of, at once: ingest (atp-load: 2 connections × 4 frames of 1,000 receive/ship
#             events), reservations (tools/atpbench reserve: 20 × 8 in flight, 1 unit of one of
#             5,000 SKUs, unique ids, ttl 2 s, so they expire and are remembered), batch queries
#             (atpbench: 2 × 2 frames of 1,000 cells) and single-cell queries (atpbench: 10 × 16)
#   slow      16 slow consumers pipelining ~80 KB replies they never read, 10 s
#             (tools/slow-consumers/slow_consumers.py; docs/BENCHMARKS.md §7), then they close
#   idle      IDLE_SECONDS (20) with no load: longer than jemalloc's 10 s decay of dirty pages
# and prints, per allocator: RSS at start, RSS peak (VmHWM), RSS right after the load, RSS after
# the idle time, the allocator's figures then (`atp stats process.memory.`: allocated, jemalloc's
# active / resident / retained, the ratios), and the requests the server answered (the load is
# closed-loop: a faster server does more work in the same time; compare the work too).
#
# Usage: tools/fragmentation.sh [SECONDS=60] [ROUNDS=1]
# Environment: FRAGMENTATION_ATPD_FLAGS adds flags to atpd (e.g. --thread-per-core);
# FRAGMENTATION_IDLE_SECONDS (20); FRAGMENTATION_SLOW_CONSUMERS (16; 0 skips the slow phase);
# FRAGMENTATION_MALLOC_CONF sets MALLOC_CONF for both servers (only jemalloc reads it).
# Run time: about ROUNDS × 2 × (SECONDS + 25 + IDLE_SECONDS) s, plus the builds.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
rounds=${2:-1}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 && "$seconds" -le 86400 && "$rounds" =~ ^[0-9]+$ && "$rounds" -ge 1 ]] ||
    { echo "usage: tools/fragmentation.sh [SECONDS=60] [ROUNDS=1]" >&2; exit 64; }
idle_seconds=${FRAGMENTATION_IDLE_SECONDS:-20}
slow_consumers=${FRAGMENTATION_SLOW_CONSUMERS:-16}
port=7496 metrics_port=9496

log() { echo "fragmentation.sh: $*" >&2; }
work=$(mktemp -d -t fragmentation.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for p in $port $metrics_port; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then log "port $p is in use; stop what listens there first"; exit 1; fi
done
command -v python3 >/dev/null || { SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 >/dev/null; }

# --- builds -----------------------------------------------------------------------------------
log "building atpbench"
bench=$work/atpbench
cc -std=c11 -O2 -pthread -Wall -o "$bench" tools/atpbench/atpbench.c
build() { # scratch-path allocator product
    ATP_ALLOCATOR=$2 swift build -c release --product "$3" --scratch-path "$1" >"$work/build.log" 2>&1 ||
        { tail -40 "$work/build.log"; log "swift build ($2, $3) failed"; exit 2; }
}
log "building atpd with jemalloc (.build-bench) and with glibc (.build-bench-glibc), atp and atp-load (release)"
build .build-bench jemalloc atpd
build .build-bench jemalloc atp
build .build-bench jemalloc atp-load
build .build-bench-glibc glibc atpd
bin=$(swift build -c release --scratch-path .build-bench --show-bin-path)
declare -A atpd_of=([jemalloc]="$bin/atpd" [glibc]="$(ATP_ALLOCATOR=glibc swift build -c release --scratch-path .build-bench-glibc --show-bin-path)/atpd")
ldd "${atpd_of[jemalloc]}" | grep libjemalloc >/dev/null || { log "the jemalloc build does not link libjemalloc"; exit 1; }
! ldd "${atpd_of[glibc]}" | grep libjemalloc >/dev/null || { log "the glibc build links libjemalloc"; exit 1; }

# Finished reservations' outcomes are remembered up to 1,000 per shard (64,000), not the default
# million: the table fills within seconds, then every new outcome frees the oldest, so both servers
# hold about the same live state however fast each runs, and the heap churns as a long-running one does.
echo '{ "ledger": { "reservationOutcomesRememberedMaxPerShard": 1000 } }' >"$work/atpd.json"

# --- one run ----------------------------------------------------------------------------------
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
stats_json() { "$bin/atp" --port $port --json stats "$1"; }
results=$work/results.txt
: >"$results"
run() { # round allocator
    local round=$1 allocator=$2 dir=$work/$1-$2 pid
    mkdir -p "$dir"
    # shellcheck disable=SC2086 # a list of flags
    MALLOC_CONF=${FRAGMENTATION_MALLOC_CONF:-${MALLOC_CONF:-}} \
        "${atpd_of[$allocator]}" --config "$work/atpd.json" --demo --in-memory --port $port --metrics-port $metrics_port ${FRAGMENTATION_ATPD_FLAGS:-} \
        >"$dir/atpd.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 300); do
        "$bench" --protocol atp --port $port --scenario ping -c 1 --seconds 0.05 --warmup-seconds 0 --quiet >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { cat "$dir/atpd.log"; log "atpd ($allocator) exited"; exit 1; }
        sleep 0.1
    done
    grep -q "/libjemalloc.so" "/proc/$pid/maps" && mapped=jemalloc || mapped=glibc
    [[ $mapped == "$allocator" ]] || { log "atpd ($allocator) maps $mapped"; exit 1; }
    local start_kib load
    start_kib=$(rss_kib "$pid")
    load=$(cut -d' ' -f1 /proc/loadavg)
    log "round $round $allocator: mixed load ${seconds} s (load average $load)"
    local clients=()
    "$bin/atp-load" --port $port --scenario ingest --batch 1000 --depth 4 --connections 2 --seconds "$seconds" \
        >"$dir/ingest.txt" 2>&1 & clients+=("$!")
    "$bench" --protocol atp --port $port --scenario reserve -c 20 -P 8 --hot 5000 --ttl-ms 2000 --seconds "$seconds" \
        --warmup-seconds 0 --quiet >"$dir/reserve.txt" 2>&1 & clients+=("$!")
    "$bench" --protocol atp --port $port --scenario batch -c 2 -P 2 --batch 1000 --seconds "$seconds" \
        --warmup-seconds 0 --quiet >"$dir/batch.txt" 2>&1 & clients+=("$!")
    "$bench" --protocol atp --port $port --scenario query -c 10 -P 16 --seconds "$seconds" \
        --warmup-seconds 0 --quiet >"$dir/query.txt" 2>&1 & clients+=("$!")
    local client failed=0
    for client in "${clients[@]}"; do wait "$client" || failed=1; done
    ((failed == 0)) || { tail -5 "$dir"/*.txt; log "a load client failed"; exit 1; }
    local mixed_kib slow_peak_mib=NA
    mixed_kib=$(rss_kib "$pid")
    if ((slow_consumers > 0)); then
        log "round $round $allocator: $slow_consumers slow consumers, 10 s"
        python3 tools/slow-consumers/slow_consumers.py --port $port --pid "$pid" --consumers "$slow_consumers" \
            --seconds 10 >"$dir/slow.txt" 2>&1 || { cat "$dir/slow.txt"; log "slow consumers failed"; exit 1; }
        slow_peak_mib=$(grep -o 'RSS peak [0-9]* MiB' "$dir/slow.txt" | grep -o '[0-9]*' || echo NA)
    fi
    local after_kib
    after_kib=$(rss_kib "$pid")
    log "round $round $allocator: idle ${idle_seconds} s"
    sleep "$idle_seconds"
    stats_json process.memory. >"$dir/memory.json"
    stats_json server.requests.answered >"$dir/answered.json"
    stats_json reservations. >"$dir/reservations.json"
    python3 - "$round" "$allocator" "$start_kib" "$mixed_kib" "$slow_peak_mib" "$after_kib" "$load" \
        "$(cut -d' ' -f1 /proc/loadavg)" "$dir" >>"$results" <<'EOF'
import json, sys
round_, allocator, start, mixed, slow_peak, after, load_start, load_end, d = sys.argv[1:]
m = json.load(open(d + "/memory.json"))
answered = json.load(open(d + "/answered.json")).get("server.requests.answered", 0)
held = json.load(open(d + "/reservations.json")).get("reservations.remembered", 0)
fields = dict(round=round_, allocator=allocator, start_kib=start, mixed_kib=mixed, slow_peak_mib=slow_peak,
              after_kib=after, answered=answered, remembered=held, load_start=load_start, load_end=load_end)
for key, value in m.items():
    if key != "process.memory.allocator":  # the code (0 glibc, 1 jemalloc): the row says which
        fields[key.replace("process.memory.", "")] = value
print(" ".join("%s=%s" % kv for kv in fields.items()))
EOF
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$rounds"); do
    if ((round % 2 == 1)); then run "$round" jemalloc; run "$round" glibc; else run "$round" glibc; run "$round" jemalloc; fi
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------------------------------
echo
echo "## atpd memory after a mixed run, jemalloc vs glibc ($(date -u +%FT%TZ))"
echo
echo "host: $(nproc) cores, load average at start $load_start, at end $load_end; $rounds round(s) of ${seconds} s mixed load,"
echo "then $slow_consumers slow consumers for 10 s, then ${idle_seconds} s idle. atpd flags: --demo --in-memory ${FRAGMENTATION_ATPD_FLAGS:-}"
echo
python3 - "$results" "$idle_seconds" <<'EOF'
import sys
rows = [dict(kv.split("=", 1) for kv in line.split()) for line in open(sys.argv[1]) if line.strip()]
def mib(kib): return "%.0f" % (int(kib) / 1024)
def b(v): return "NA" if v is None else "%.0f" % (int(v) / 1048576)
def r(v): return "NA" if v is None else "%.2f" % (int(v) / 1000)
print("| round | allocator | RSS start MiB | RSS peak MiB | RSS after mixed MiB | RSS peak slow MiB | RSS after load MiB | RSS after idle MiB | allocated MiB | active MiB | resident MiB | retained MiB | RSS÷allocated | active÷allocated | resident÷active | requests answered | load avg start/end |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for x in rows:
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
        x["round"], x["allocator"], mib(x["start_kib"]), b(x.get("rssPeakBytes")), mib(x["mixed_kib"]), x["slow_peak_mib"],
        mib(x["after_kib"]), b(x.get("rssBytes")), b(x.get("allocatedBytes")), b(x.get("activeBytes")),
        b(x.get("residentBytes")), b(x.get("retainedBytes")), r(x.get("fragmentationPermille")),
        r(x.get("allocatorFragmentationPermille")), r(x.get("allocatorRSSPermille")),
        "{:,}".format(int(x["answered"])), x["load_start"], x["load_end"]))
print()
print("allocated: jemalloc stats.allocated, or glibc mallinfo2 uordblks + hblkhd; RSS after idle and the allocator's")
print("figures are read together, %s s after the slow consumers closed." % sys.argv[2])
print()
print("Raw lines:")
for line in open(sys.argv[1]):
    print("    " + line.rstrip())
EOF
