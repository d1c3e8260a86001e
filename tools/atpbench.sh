#!/usr/bin/env bash
# atpd against Redis, like for like, measured by one C load generator (tools/atpbench/atpbench.c)
# that costs the client about what redis-benchmark costs. Builds atpbench (cc) and atpd (release,
# scratch path .build-bench), checks atpbench's encoder against docs/PROTOCOL.md §10, then starts
#   atpd --demo --in-memory         (port 7451)     redis-server --save '' --appendonly no  (port 6451)
#   atpd --demo --durability sync   (port 7452)     redis-server --appendonly yes --appendfsync always (6452)
# each with a fresh temporary data directory, and runs ROUNDS rounds of every scenario, alternating
# which system goes first. Scenarios (atpd | Redis):
#   ping             ping                               | PING
#   query            one random demo cell               | GET of one random key (same names, preloaded)
#   batch            1,000 random cells in one frame    | MGET of 1,000 random keys
#   reserve          reserve 1 unit of SKU-00001@DC-EAST, unique id, ttl 1 s
#                                                       | EVALSHA: GET stock, check, DECRBY, SET id PX ttl
#   reserve-durable  the same against the sync / appendfsync-always servers
# Prints the median of each figure per scenario as a markdown table with atpd÷Redis ratios, the
# client's CPU µs per request on each side (from getrusage over the measured window), the server's
# CPU µs per request (from /proc/PID/task/*/schedstat), instructions per request when `perf stat`
# may count them, and the load average at start and end (the machine may be shared: look at it).
#
# Usage: tools/atpbench.sh [SECONDS=5] [ROUNDS=5]
# Run time: about ROUNDS × 5 scenarios × 2 systems × (SECONDS + 2) s, plus the builds.
# Environment: ATPBENCH_SCENARIOS="ping query ..." picks scenarios; ATPBENCH_CONNS (50),
# ATPBENCH_PIPELINE (16), ATPBENCH_BATCH (1000), ATPBENCH_BATCH_CONNS (4), ATPBENCH_BATCH_PIPELINE (2),
# ATPBENCH_THREADS (1) change the load; ATPBENCH_ATPD_FLAGS adds flags to both atpd servers (--thread-per-core).
# ATPBENCH_SHARD_AWARE=1 runs both atpd servers with --thread-per-core and a port per core
# (--core-port-base 7461 / 7471) and atpbench with --shard-aware: each request goes to the port of the
# core that owns its SKU (docs/PROTOCOL.md §7.1, "The shard map"), so none is forwarded.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${2:-5}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 && "$rounds" =~ ^[0-9]+$ && "$rounds" -ge 1 ]] ||
    { echo "usage: tools/atpbench.sh [SECONDS=5] [ROUNDS=5]" >&2; exit 64; }
scenarios=${ATPBENCH_SCENARIOS:-"ping query batch reserve reserve-durable"}
conns=${ATPBENCH_CONNS:-50}
pipeline=${ATPBENCH_PIPELINE:-16}
batch=${ATPBENCH_BATCH:-1000}
batch_conns=${ATPBENCH_BATCH_CONNS:-4}
batch_pipeline=${ATPBENCH_BATCH_PIPELINE:-2}
threads=${ATPBENCH_THREADS:-1}
ttl_ms=1000

atp_port=7451 atp_metrics=9451 atp_sync_port=7452 atp_sync_metrics=9452 atp_core_ports=7461 atp_sync_core_ports=7471
shard_aware=${ATPBENCH_SHARD_AWARE:-0}
redis_port=6451 redis_aof_port=6452

work=$(mktemp -d -t atpbench.XXXXXX)
server_pids=()
cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${server_pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "atpbench.sh: $*" >&2; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
core_ports=()
[[ $shard_aware == 1 ]] && core_ports=($(seq $atp_core_ports $((atp_core_ports + 7))) $(seq $atp_sync_core_ports $((atp_sync_core_ports + 7))))
for port in $atp_port $atp_metrics $atp_sync_port $atp_sync_metrics $redis_port $redis_aof_port "${core_ports[@]}"; do
    if port_in_use "$port"; then log "port $port is in use; stop what listens there first"; exit 1; fi
done

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    log "installing redis-server and redis-tools"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi

# --- builds -----------------------------------------------------------------------------------
log "building atpbench"
bench=$work/atpbench
cc -std=c11 -O2 -pthread -Wall -o "$bench" tools/atpbench/atpbench.c
if ! "$bench" --self-test --doc docs/PROTOCOL.md >"$work/self-test.txt"; then
    cat "$work/self-test.txt"; log "atpbench --self-test failed against docs/PROTOCOL.md"; exit 1
fi
log "$(tail -1 "$work/self-test.txt")"
log "building atpd (release, --scratch-path .build-bench)"
for attempt in 1 2 3 4; do # sources edited while building: "was modified during the build", try again
    swift build -c release --product atpd --scratch-path .build-bench >"$work/build.log" 2>&1 && break
    if [[ $attempt -lt 4 ]] && grep -q 'modified during the build' "$work/build.log"; then
        log "a source changed during the build; building again"; sleep 5; continue
    fi
    tail -40 "$work/build.log"; log "swift build failed"; exit 2
done
atpd="$(swift build -c release --scratch-path .build-bench --show-bin-path)/atpd"

# --- servers ----------------------------------------------------------------------------------
declare -A pid_of
start_atpd() { # name port metrics-port durability (memory: no data directory at all) core-port-base
    mkdir -p "$work/$1"
    local storage=(--data-dir "$work/$1/data" --durability "$4" --snapshot-interval-seconds 0) cores=()
    [[ $4 == memory ]] && storage=(--in-memory)
    [[ $shard_aware == 1 ]] && cores=(--thread-per-core --core-port-base "$5")
    # shellcheck disable=SC2086 # ATPBENCH_ATPD_FLAGS is a list of flags
    "$atpd" --demo --port "$2" --metrics-port "$3" "${storage[@]}" "${cores[@]}" ${ATPBENCH_ATPD_FLAGS:-} \
        >"$work/$1/atpd.log" 2>&1 &
    pid_of[$1]=$!
    server_pids+=("$!")
    for _ in $(seq 300); do
        kill -0 "${pid_of[$1]}" 2>/dev/null || { cat "$work/$1/atpd.log"; log "atpd $1 exited"; exit 1; }
        "$bench" --protocol atp --port "$2" --scenario ping -c 1 --seconds 0.05 --warmup-seconds 0 --quiet \
            >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "atpd $1 did not answer on port $2"; exit 1
}
start_redis() { # name port persistence-options...
    local name=$1 port=$2
    shift 2
    mkdir -p "$work/$name"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work/$name" --daemonize no "$@" >"$work/$name/redis.log" 2>&1 &
    pid_of[$name]=$!
    server_pids+=("$!")
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        kill -0 "${pid_of[$name]}" 2>/dev/null || { cat "$work/$name/redis.log"; log "redis $name exited"; exit 1; }
        sleep 0.1
    done
    log "redis $name did not answer on port $port"; exit 1
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "starting servers (load average $load_start)"
start_atpd atpd-none $atp_port $atp_metrics memory $atp_core_ports
start_atpd atpd-sync $atp_sync_port $atp_sync_metrics sync $atp_sync_core_ports
start_redis redis $redis_port --save '' --appendonly no
start_redis redis-aof $redis_aof_port --save '' --appendonly yes --appendfsync always
"$bench" --protocol resp --port $redis_port --scenario query -c 1 --seconds 0.05 --warmup-seconds 0 --preload \
    >/dev/null 2>"$work/preload.txt" || { cat "$work/preload.txt"; exit 1; }
log "$(grep -o 'preloaded.*' "$work/preload.txt")"

perf_flag=()
if command -v perf >/dev/null && perf stat -x, -e instructions -- true 2>&1 | grep -q '^[0-9]'; then
    perf_flag=(--perf)
else
    log "perf cannot count instructions here (not installed, not permitted or no PMU): instructions/request skipped"
fi

# --- rounds -----------------------------------------------------------------------------------
results=$work/results.txt
: >"$results"
run() { # round system scenario
    local round=$1 system=$2 scenario=$3 server port protocol args
    case "$scenario" in
        ping) args=(--scenario ping -c "$conns" -P "$pipeline") ;;
        query) args=(--scenario query -c "$conns" -P "$pipeline") ;;
        batch) args=(--scenario batch -c "$batch_conns" -P "$batch_pipeline" --batch "$batch") ;;
        reserve | reserve-durable) args=(--scenario reserve -c "$conns" -P "$pipeline" --hot 1 --ttl-ms $ttl_ms) ;;
        *) log "unknown scenario $scenario"; exit 64 ;;
    esac
    if [[ $system == atpd ]]; then
        protocol=atp; server=atpd-none; port=$atp_port
        [[ $shard_aware == 1 ]] && args+=(--shard-aware)
        [[ $scenario == reserve-durable ]] && { server=atpd-sync; port=$atp_sync_port; }
    else
        protocol=resp; server=redis; port=$redis_port
        [[ $scenario == reserve-durable ]] && { server=redis-aof; port=$redis_aof_port; }
    fi
    local line
    if ! line=$(timeout $((seconds + 60)) "$bench" --protocol $protocol --port "$port" "${args[@]}" --threads "$threads" \
        --seconds "$seconds" --server-pid "${pid_of[$server]}" "${perf_flag[@]}" --quiet \
        --label "round=$round,system=$system,scenario=$scenario" 2>"$work/stderr.txt" | grep '^atpbench '); then
        cat "$work/stderr.txt" >&2; log "round $round: $system $scenario failed"; exit 1
    fi
    [[ -s "$work/stderr.txt" ]] && sed "s/^/  ($system $scenario) /" "$work/stderr.txt" >&2
    echo "$line" >>"$results"
    log "round $round/$rounds $scenario $system: $(sed -E 's/.* rps=([0-9]+).* p50_us=([0-9.]+) p99_us=([0-9.]+).* errors=([0-9]+).*/\1 req\/s p50 \2 us p99 \3 us errors \4/' <<<"$line")"
}
for round in $(seq "$rounds"); do
    for scenario in $scenarios; do
        if (( round % 2 == 1 )); then run "$round" atpd "$scenario"; run "$round" redis "$scenario"
        else run "$round" redis "$scenario"; run "$round" atpd "$scenario"; fi
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------------------------------
echo
echo "## atpd vs Redis, median of $rounds round(s) of ${seconds} s ($(date -u +%FT%TZ))"
echo
echo "host: $(nproc) cores, load average at start $load_start, at end $load_end; $(redis-server --version | grep -o 'v=[0-9.]*' | sed 's/v=/Redis /');"
echo "load: $conns connections × $pipeline in flight (batch: $batch_conns × $batch_pipeline frames of $batch), $threads client thread(s)."
[[ $shard_aware == 1 ]] && echo "atpd: --thread-per-core with a port per core; atpbench --shard-aware sends each request to its SKU's core."
[[ -n ${ATPBENCH_ATPD_FLAGS:-} ]] && echo "atpd flags: ${ATPBENCH_ATPD_FLAGS}"
echo
awk -v scenarios="$scenarios" '
function median(key,    n, i, j, v, t) {
    n = count[key]
    if (n == 0) return "NA"
    for (i = 1; i <= n; i++) v[i] = values[key, i]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return v[int((n + 1) / 2)]
}
function fmt(x, digits) { return x == "NA" ? "NA" : sprintf("%." digits "f", x) }
function thousands(x,    s, r) {
    if (x == "NA") return "NA"
    s = sprintf("%.0f", x); r = ""
    while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
    return s r
}
{
    delete kv
    for (i = 2; i <= NF; i++) { split($i, p, "="); kv[p[1]] = substr($i, length(p[1]) + 2) }
    split(kv["label"], l, ","); split(l[2], a, "="); sys = a[2]; split(l[3], b, "="); scenario = b[2]
    rate = scenario == "batch" ? kv["answers_per_s"] : kv["rps"]
    n = split("rate p50_us p99_us p999_us client_cpu_us_per_req server_cpu_us_per_req server_instructions_per_req", names, " ")
    kv["rate"] = rate
    for (i = 1; i <= n; i++) {
        if (kv[names[i]] == "NA") continue
        key = scenario SUBSEP sys SUBSEP names[i]
        values[key, ++count[key]] = kv[names[i]]
    }
    k = scenario SUBSEP sys
    errors[k] += kv["errors"]; granted[k] += kv["granted"]; shorts[k] += kv["short"] + kv["other"]
    hits[k] += kv["hits"]; answers[k] += kv["answers"]
}
END {
    print "| scenario | atpd /s | Redis /s | atpd÷Redis | p50 µs atpd / Redis | p99 µs atpd / Redis | p99.9 µs atpd / Redis | client CPU µs/req atpd / Redis | server CPU µs/req atpd / Redis | server instr/req atpd / Redis | errors atpd / Redis | outcome atpd / Redis |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    ns = split(scenarios, list, " ")
    for (s = 1; s <= ns; s++) {
        sc = list[s]; A = sc SUBSEP "atpd"; R = sc SUBSEP "redis"
        ra = median(A SUBSEP "rate"); rr = median(R SUBSEP "rate")
        ratio = (ra == "NA" || rr == "NA" || rr + 0 == 0) ? "NA" : sprintf("%.2f", ra / rr)
        if (sc ~ /^reserve/) outcome = sprintf("granted %s, short/other %s / granted %s, short/other %s", thousands(granted[A]), thousands(shorts[A]), thousands(granted[R]), thousands(shorts[R]))
        else if (sc == "query" || sc == "batch") outcome = sprintf("hits %.1f %% / %.1f %%", answers[A] ? 100 * hits[A] / answers[A] : 0, answers[R] ? 100 * hits[R] / answers[R] : 0)
        else outcome = "—"
        label = sc == "batch" ? "batch (answers/s)" : sc
        printf "| %s | %s | %s | %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %d / %d | %s |\n", label, thousands(ra), thousands(rr), ratio,
            fmt(median(A SUBSEP "p50_us"), 0), fmt(median(R SUBSEP "p50_us"), 0), fmt(median(A SUBSEP "p99_us"), 0), fmt(median(R SUBSEP "p99_us"), 0),
            fmt(median(A SUBSEP "p999_us"), 0), fmt(median(R SUBSEP "p999_us"), 0),
            fmt(median(A SUBSEP "client_cpu_us_per_req"), 3), fmt(median(R SUBSEP "client_cpu_us_per_req"), 3),
            fmt(median(A SUBSEP "server_cpu_us_per_req"), 2), fmt(median(R SUBSEP "server_cpu_us_per_req"), 2),
            thousands(median(A SUBSEP "server_instructions_per_req")), thousands(median(R SUBSEP "server_instructions_per_req")),
            errors[A], errors[R], outcome
    }
}' "$results"
echo
echo "Rates are requests/s (batch: answers/s, $batch per request); each column is the median of its own rounds."
echo "reserve: atpd --in-memory (no data directory) vs Redis without persistence; reserve-durable: atpd --durability sync vs"
echo "Redis --appendonly yes --appendfsync always."
echo "CPU per request: the client's (getrusage, whole process) and the server's (all its threads) over the measured window."
echo
echo "Raw lines (one per run):"
sed 's/^/    /' "$results"
