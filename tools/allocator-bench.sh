#!/usr/bin/env bash
# atpd on jemalloc against atpd on glibc malloc, throughput (issue 13). Builds atpd twice (release):
# with jemalloc, the default (--scratch-path .build-bench), and with ATP_ALLOCATOR=glibc
# (--scratch-path .build-bench-glibc); starts both `atpd --demo --in-memory` (ports 7497 and 7498)
# and runs ROUNDS rounds of tools/atpbench.sh's scenarios against each, alternating which
# allocator goes first in a round:
#   ping     50 connections × 16 in flight
#   query    one random demo cell, 50 × 16
#   batch    1,000 random cells a frame, 4 × 2 frames (answers/s)
#   reserve  1 unit of SKU-00001@DC-EAST, unique id, ttl 1 s, 50 × 16
# Prints, per scenario, the median rate of each allocator, their ratio (jemalloc ÷ glibc), the
# spread of the ratio over the rounds, p50 / p99 latency and the server's CPU µs per request
# (/proc/PID/task/*/schedstat over the measured window), and the load average at start and end.
# The machine may be shared: a ratio within the spread of its rounds is no difference.
#
# Usage: tools/allocator-bench.sh [SECONDS=5] [ROUNDS=5]
# Environment: ALLOCBENCH_SCENARIOS="ping query batch reserve"; ALLOCBENCH_ATPD_FLAGS adds flags to
# both servers (e.g. --thread-per-core).
# Run time: about ROUNDS × scenarios × 2 × (SECONDS + 1) s, plus the builds.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${2:-5}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 && "$rounds" =~ ^[0-9]+$ && "$rounds" -ge 1 ]] ||
    { echo "usage: tools/allocator-bench.sh [SECONDS=5] [ROUNDS=5]" >&2; exit 64; }
scenarios=${ALLOCBENCH_SCENARIOS:-"ping query batch reserve"}
declare -A port_of=([jemalloc]=7497 [glibc]=7498) metrics_of=([jemalloc]=9497 [glibc]=9498) pid_of=()

log() { echo "allocator-bench.sh: $*" >&2; }
work=$(mktemp -d -t allocator-bench.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for p in "${port_of[@]}" "${metrics_of[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then log "port $p is in use; stop what listens there first"; exit 1; fi
done

log "building atpbench"
bench=$work/atpbench
cc -std=c11 -O2 -pthread -Wall -o "$bench" tools/atpbench/atpbench.c
declare -A scratch_of=([jemalloc]=.build-bench [glibc]=.build-bench-glibc) atpd_of=()
log "building atpd with jemalloc (.build-bench) and with glibc (.build-bench-glibc)"
for allocator in jemalloc glibc; do
    ATP_ALLOCATOR=$allocator swift build -c release --product atpd --scratch-path "${scratch_of[$allocator]}" \
        >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; log "swift build ($allocator) failed"; exit 2; }
    atpd_of[$allocator]="$(ATP_ALLOCATOR=$allocator swift build -c release --scratch-path "${scratch_of[$allocator]}" --show-bin-path)/atpd"
done

for allocator in jemalloc glibc; do
    # shellcheck disable=SC2086 # a list of flags
    "${atpd_of[$allocator]}" --demo --in-memory --port "${port_of[$allocator]}" --metrics-port "${metrics_of[$allocator]}" \
        ${ALLOCBENCH_ATPD_FLAGS:-} >"$work/$allocator.log" 2>&1 &
    pid_of[$allocator]=$!
    pids+=("$!")
    for _ in $(seq 300); do
        "$bench" --protocol atp --port "${port_of[$allocator]}" --scenario ping -c 1 --seconds 0.05 --warmup-seconds 0 \
            --quiet >/dev/null 2>&1 && break
        kill -0 "${pid_of[$allocator]}" 2>/dev/null || { cat "$work/$allocator.log"; log "atpd ($allocator) exited"; exit 1; }
        sleep 0.1
    done
    grep -q "/libjemalloc.so" "/proc/${pid_of[$allocator]}/maps" && mapped=jemalloc || mapped=glibc
    [[ $mapped == "$allocator" ]] || { log "atpd ($allocator) runs on $mapped"; exit 1; }
done

results=$work/results.txt
: >"$results"
run() { # round allocator scenario
    local args
    case "$3" in
        ping) args=(--scenario ping -c 50 -P 16) ;;
        query) args=(--scenario query -c 50 -P 16) ;;
        batch) args=(--scenario batch -c 4 -P 2 --batch 1000) ;;
        reserve) args=(--scenario reserve -c 50 -P 16 --hot 1 --ttl-ms 1000) ;;
        *) log "unknown scenario $3"; exit 64 ;;
    esac
    local line
    line=$("$bench" --protocol atp --port "${port_of[$2]}" "${args[@]}" --seconds "$seconds" \
        --server-pid "${pid_of[$2]}" --quiet --label "round=$1,allocator=$2,scenario=$3" 2>"$work/stderr.txt" |
        grep '^atpbench ') || { cat "$work/stderr.txt" >&2; log "round $1: $2 $3 failed"; exit 1; }
    echo "$line load=$(cut -d' ' -f1 /proc/loadavg)" >>"$results"
    log "round $1/$rounds $3 $2: $(grep -o 'rps=[0-9]*' <<<"$line")"
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$rounds"); do
    for scenario in $scenarios; do
        if ((round % 2 == 1)); then run "$round" jemalloc "$scenario"; run "$round" glibc "$scenario"
        else run "$round" glibc "$scenario"; run "$round" jemalloc "$scenario"; fi
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
rss() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

echo
echo "## atpd on jemalloc vs glibc malloc, median of $rounds round(s) of ${seconds} s ($(date -u +%FT%TZ))"
echo
echo "host: $(nproc) cores, load average at start $load_start, at end $load_end; atpd --demo --in-memory ${ALLOCBENCH_ATPD_FLAGS:-}"
echo "RSS at the end: jemalloc $(rss "${pid_of[jemalloc]}") MiB, glibc $(rss "${pid_of[glibc]}") MiB"
echo
python3 - "$results" "$scenarios" <<'EOF'
import statistics, sys
rows = []
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
    label = dict(p.split("=", 1) for p in kv["label"].split(","))
    kv.update(label)
    kv["rate"] = kv["answers_per_s"] if kv["scenario"] == "batch" else kv["rps"]
    rows.append(kv)
def values(scenario, allocator, key):
    return [float(r[key]) for r in rows if r["scenario"] == scenario and r["allocator"] == allocator and r.get(key, "NA") != "NA"]
def med(v): return statistics.median(v) if v else float("nan")
print("| scenario | jemalloc /s | glibc /s | jemalloc÷glibc of medians | jemalloc÷glibc per round: median (min–max) | p50 µs je / glibc | p99 µs je / glibc | server CPU µs/req je / glibc | load avg during |")
print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |")
for s in sys.argv[2].split():
    je, gl = values(s, "jemalloc", "rate"), values(s, "glibc", "rate")
    per_round = []
    for rnd in sorted({r["round"] for r in rows}):
        a = [float(r["rate"]) for r in rows if r["scenario"] == s and r["round"] == rnd and r["allocator"] == "jemalloc"]
        b = [float(r["rate"]) for r in rows if r["scenario"] == s and r["round"] == rnd and r["allocator"] == "glibc"]
        if a and b and b[0] > 0: per_round.append(a[0] / b[0])
    loads = [float(r["load"]) for r in rows if r["scenario"] == s]
    print("| %s | %s | %s | %.2f | %.2f (%.2f–%.2f) | %.0f / %.0f | %.0f / %.0f | %.2f / %.2f | %.1f–%.1f |" % (
        "batch (answers/s)" if s == "batch" else s, "{:,.0f}".format(med(je)), "{:,.0f}".format(med(gl)),
        med(je) / med(gl), med(per_round), min(per_round), max(per_round),
        med(values(s, "jemalloc", "p50_us")), med(values(s, "glibc", "p50_us")),
        med(values(s, "jemalloc", "p99_us")), med(values(s, "glibc", "p99_us")),
        med(values(s, "jemalloc", "server_cpu_us_per_req")), med(values(s, "glibc", "server_cpu_us_per_req")),
        min(loads), max(loads)))
print()
print("The two allocators of a round run back to back: on a shared machine the per-round ratio is the")
print("steadier figure (the medians of each side may come from rounds under different load).")
print()
print("Raw lines:")
for line in open(sys.argv[1]):
    print("    " + line.rstrip())
EOF
