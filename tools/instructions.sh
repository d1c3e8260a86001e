#!/usr/bin/env bash
# Server instructions per request, atpd against Redis, counted by valgrind's callgrind: the figure
# that does not move with the load of a shared machine (perf cannot count instructions on this VM).
# Each server runs under `valgrind --tool=callgrind --instr-atstart=no`; the script switches
# counting on (`callgrind_control -i on`), reads the server's own count of answered requests (atpd:
# `atp stats server.requests.answered`; Redis: INFO `total_commands_processed`), drives the load
# with tools/atpbench (the same C client as tools/atpbench.sh), reads the count again, switches
# counting off and dumps. Instructions per request = instructions counted ÷ requests answered in
# between (the two statistics requests are in both). User-space instructions only: the kernel's
# send and receive, about a third of either server's time, is not in these figures.
# Systems (atpd | Redis):
#   atpd --demo --in-memory --thread-per-core --core-port-base 7481, atpbench --shard-aware
#                                              | redis-server --save '' --appendonly no, preloaded
# Scenarios: ping (PING), query (GET), batch (MGET of 1,000; per answer), reserve (EVALSHA of the
# script in tools/atpbench: GET, check, DECRBY, SET id PX ttl), with the load of tools/atpbench.sh
# (50 connections × 16 in flight; batch 4 × 2 frames; reserve 1 unit of one hot SKU, ttl 1 s).
#
# Usage: tools/instructions.sh [SECONDS=10]   (per scenario and system, under valgrind)
# Environment: INSTRUCTIONS_SCENARIOS="ping query batch reserve"; INSTRUCTIONS_ATPD_FLAGS replaces
# the thread-per-core flags (e.g. "" for the default threading, then atpbench is not shard-aware);
# INSTRUCTIONS_KEEP=DIR keeps each run's callgrind output there (DIR/atpd-query.out, ...) for
# `callgrind_annotate --inclusive=yes DIR/atpd-query.out`.
# Run time: about 4 scenarios × 2 systems × (SECONDS + 40 s of start-up under valgrind), plus builds.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 ]] || { echo "usage: tools/instructions.sh [SECONDS=10]" >&2; exit 64; }
scenarios=${INSTRUCTIONS_SCENARIOS:-"ping query batch reserve"}
atpd_flags=${INSTRUCTIONS_ATPD_FLAGS-"--thread-per-core --core-port-base 7481"}
atp_port=7479 atp_metrics=9479 redis_port=6479

log() { echo "instructions.sh: $*" >&2; }
for tool in valgrind callgrind_control redis-server redis-cli; do
    command -v "$tool" >/dev/null && continue
    log "installing valgrind, redis-server and redis-tools"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq valgrind redis-server redis-tools >/dev/null
    break
done

work=$(mktemp -d -t instructions.XXXXXX)
server_pid=""
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building atpbench, atpd and atp (release, --scratch-path .build-bench)"
bench=$work/atpbench
cc -std=c11 -O2 -pthread -Wall -o "$bench" tools/atpbench/atpbench.c
"$bench" --self-test --doc docs/PROTOCOL.md >"$work/self-test.txt" || { cat "$work/self-test.txt"; exit 1; }
for product in atpd atp; do
    swift build -c release --product $product --scratch-path .build-bench >"$work/build.log" 2>&1 ||
        { tail -40 "$work/build.log"; log "swift build failed"; exit 2; }
done
bin="$(swift build -c release --scratch-path .build-bench --show-bin-path)"
# Valgrind 3.19 cannot read the DWARF 5 the Swift toolchain writes ("possibly corrupted debuginfo"):
# it runs a copy without debug information (the counts do not need it).
strip --strip-debug -o "$work/atpd" "$bin/atpd"

wait_for() { # description command...
    local what=$1
    shift
    for _ in $(seq 1200); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; log "$what exited"; exit 1; }
        sleep 0.25
    done
    log "$what did not answer"; exit 1
}
start_atpd() {
    # shellcheck disable=SC2086 # the flags are a list
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
        "$work/atpd" --demo --in-memory --port $atp_port --metrics-port $atp_metrics $atpd_flags \
        >"$work/server.log" 2>&1 &
    server_pid=$!
    wait_for "atpd under valgrind" "$bench" --protocol atp --port $atp_port --scenario ping -c 1 \
        --seconds 0.05 --warmup-seconds 0 --quiet
}
start_redis() {
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
        redis-server --port $redis_port --bind 127.0.0.1 --dir "$work" --save '' --appendonly no \
        >"$work/server.log" 2>&1 &
    server_pid=$!
    wait_for "redis-server under valgrind" redis-cli -p $redis_port ping
    "$bench" --protocol resp --port $redis_port --scenario query -c 1 --seconds 0.05 --warmup-seconds 0 \
        --preload --quiet >/dev/null 2>&1
}
answered() { # system
    if [[ $1 == atpd ]]; then
        "$bin/atp" --port $atp_port --token demo-admin stats server.requests.answered |
            grep -o 'server.requests.answered[^0-9]*[0-9]*' | grep -o '[0-9]*$'
    else
        redis-cli -p $redis_port info stats | tr -d '\r' | sed -n 's/^total_commands_processed://p'
    fi
}
total_instructions() { # the callgrind dump's summary (Ir) over all its parts
    awk '/^(summary|totals):/ { sum += $2 } END { printf "%.0f\n", sum }' "$work"/callgrind.out*
}

results=$work/results.txt
: >"$results"
for system in atpd redis; do
    for scenario in $scenarios; do
        rm -f "$work"/callgrind.out*
        if [[ $system == atpd ]]; then start_atpd; else start_redis; fi
        args=(--scenario "$scenario" -c 50 -P 16)
        case $scenario in
            batch) args=(--scenario batch -c 4 -P 2 --batch 1000) ;;
            reserve) args+=(--hot 1 --ttl-ms 1000) ;;
        esac
        protocol=resp port=$redis_port
        if [[ $system == atpd ]]; then
            protocol=atp port=$atp_port
            [[ $atpd_flags == *--core-port-base* ]] && args+=(--shard-aware)
        fi
        callgrind_control -i on "$server_pid" >/dev/null 2>&1
        before=$(answered $system)
        line=$(timeout $((seconds + 300)) "$bench" --protocol $protocol --port $port "${args[@]}" \
            --seconds "$seconds" --warmup-seconds 1 --quiet | grep "$scenario:") ||
            { log "$system $scenario: atpbench failed"; exit 1; }
        after=$(answered $system)
        callgrind_control -i off "$server_pid" >/dev/null 2>&1
        callgrind_control -d "$server_pid" >/dev/null 2>&1
        sleep 1
        stop_server
        instructions=$(total_instructions)
        if [[ -n ${INSTRUCTIONS_KEEP:-} ]]; then
            mkdir -p "$INSTRUCTIONS_KEEP"
            for part in $(ls -S "$work"/callgrind.out* | head -1); do cp "$part" "$INSTRUCTIONS_KEEP/$system-$scenario.out"; done
        fi
        requests=$((after - before))
        answers=$requests
        [[ $scenario == batch ]] && answers=$((requests * 1000))
        log "$system $scenario: $instructions instructions over $requests requests ($line)"
        echo "$system $scenario $instructions $requests $answers" >>"$results"
    done
done

echo
echo "## Server instructions per request (callgrind, user space), $(date -u +%FT%TZ)"
echo
echo "atpd flags: --demo --in-memory $atpd_flags; $(redis-server --version | grep -o 'v=[0-9.]*' | sed 's/v=/Redis /') without persistence; ${seconds} s of load each."
echo
echo "| scenario | atpd instructions | Redis instructions | atpd ÷ Redis |"
echo "| --- | ---: | ---: | ---: |"
awk '
{ per[$1, $2] = $3 / $5; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
END {
    for (i = 1; i <= n; i++) {
        s = order[i]; unit = (s == "batch") ? " per answer" : " per request"
        printf "| %s%s | %.0f | %.0f | %.2f× |\n", s, unit, per["atpd", s], per["redis", s], per["atpd", s] / per["redis", s]
    }
}' "$results"
