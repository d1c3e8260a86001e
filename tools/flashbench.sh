#!/usr/bin/env bash
# Flash-sale figures of issue 6: the same hot-SKU scenario against atpd and against what teams use
# today, on the same machine in the same run (docs/FLASH-SALE.md).
#
#   Scenario: 10 hot SKUs, every buyer reserves 1..5 units of one of them (uniform), all or nothing.
#   hot      stock large enough not to run out (10 x 10,000,000 units), SECONDS per run:
#              atpd        tools/flash-sale, 256 connections at depth 1 and at depth 16, 1,000
#                          connections at depth 1 (closed loop), and 1,000 connections in an open
#                          loop of 10,000 buyers/s (the p99 goal; latency from the intended arrival)
#              Redis       the usual Lua reserve script (GET, check, DECRBY) by EVALSHA, driven by
#                          redis-benchmark -c 256, unpipelined (-P 1) and at -P 16
#              PostgreSQL  UPDATE stock SET qty = qty - :n WHERE sku = :sku AND qty >= :n, driven by
#                          pgbench at 16, 64 and 256 clients
#   sellout  10 x 5,000 units (50,000), buyers until the stock is gone; checks that no unit is
#            oversold and none is left.
# Every run starts from the same stock; each system's final stock is read back (flash-sale's own
# check; Redis GET; psql SELECT) to count oversold units. All three servers stay up for the whole
# invocation and each of the ROUNDS rounds runs every system's scenarios in turn (so a shared machine's
# changing load falls on every system alike); the median round is reported, and ratios are between
# medians of this same invocation. redis-benchmark stops after a request count, not a time: a short
# calibration run per pipelining depth sets the count to about SECONDS of work.
#
# Usage: tools/flashbench.sh [--install] [SECONDS=5] [ROUNDS=3]
#   --install   apt-get install -y redis-server postgresql when missing (nothing is installed otherwise)
# Environment: FLASHBENCH_SCRATCH  the build directory (default .build); FLASHBENCH_NO_BUILD=1  use the
# release binaries already there; FLASHBENCH_PORT_BASE  first of the three loopback ports used
# (default 7431: atpd 7431, Redis 7432, PostgreSQL 7433).
# A baseline whose server is not installed is skipped with a message. Every server the script started
# is stopped when it ends, also on an error or Ctrl-C. Run time: about ROUNDS x (4 + 2 + 3) x
# (SECONDS + 2) s plus the sell-out runs and the release builds (3.5 minutes for 5 s x 3 rounds).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }
install=0
positional=()
for argument in "$@"; do
    case "$argument" in
        --install) install=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "flashbench: unknown option $argument" >&2; usage >&2; exit 2 ;;
        *) positional+=("$argument") ;;
    esac
done
seconds=${positional[0]:-5}
rounds=${positional[1]:-3}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 && "$seconds" -le 600 ]] || { echo "flashbench: SECONDS must be 1..600, not '$seconds'" >&2; exit 2; }
[[ "$rounds" =~ ^[0-9]+$ && "$rounds" -ge 1 && "$rounds" -le 20 ]] || { echo "flashbench: ROUNDS must be 1..20, not '$rounds'" >&2; exit 2; }
scratch=${FLASHBENCH_SCRATCH:-.build}
port_base=${FLASHBENCH_PORT_BASE:-7431}
atpd_port=$port_base
# 1,000 connections need more than the usual 1,024 descriptors per process.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
redis_port=$((port_base + 1))
pg_port=$((port_base + 2))

skus=10
max_units=5
hot_stock=10000000
sellout_stock=5000
connections=256
depth_pipelined=16
connections_many=1000
open_rate=10000

work=$(mktemp -d -t flashbench.XXXXXX)
chmod 755 "$work"
results="$work/results.jsonl"
: >"$results"
atpd_pid=""
redis_pid=""
pg_data=""
pg_bin=""
pg_as=()
# Every server this script started is stopped however it ends: normally, on an error (set -e), or on
# Ctrl-C / SIGTERM (the servers run in the background, where SIGINT does not reach them).
stop_servers() {
    if [[ -n "$atpd_pid" ]]; then kill "$atpd_pid" 2>/dev/null || true; wait "$atpd_pid" 2>/dev/null || true; atpd_pid=""; fi
    if [[ -n "$redis_pid" ]]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; redis_pid=""; fi
    if [[ -n "$pg_data" ]]; then "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true; pg_data=""; fi
}
cleanup() {
    trap - INT TERM
    stop_servers
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "flashbench: interrupted; stopping the servers" >&2; exit 130' INT
trap 'echo "flashbench: terminated; stopping the servers" >&2; exit 143' TERM

if [[ $install -eq 1 ]]; then
    missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
    if [[ ${#missing[@]} -gt 0 ]]; then
        SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
        echo "flashbench: installing ${missing[*]}" >&2
        $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi

bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)
if [[ "${FLASHBENCH_NO_BUILD:-0}" == 1 ]]; then
    for tool in atpd flash-sale; do
        [[ -x "$bin/$tool" ]] || { echo "flashbench: FLASHBENCH_NO_BUILD=1 but $bin/$tool is missing" >&2; exit 2; }
    done
else
    echo "flashbench: building atpd and flash-sale (release, $scratch)" >&2
    swift build -c release --scratch-path "$scratch" --product atpd >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 2; }
    swift build -c release --scratch-path "$scratch" --product flash-sale >>"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 2; }
fi

echo "== host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "== scenario: $skus hot SKUs, buyers ask 1..$max_units units; hot: $hot_stock units each, ${seconds}s runs; sellout: $sellout_stock units each; median of $rounds rounds"

# ---------------------------------------------------------------- atpd
port_is_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for_port() { for _ in $(seq 100); do port_is_open "$1" && return 0; sleep 0.1; done; return 1; }
# require_free_port PORT WHAT: a server of someone else's on our port would be measured instead of ours.
require_free_port() {
    if port_is_open "$1"; then
        echo "flashbench: port $1 (for $2) is already in use; choose other ports with FLASHBENCH_PORT_BASE" >&2
        exit 2
    fi
}
require_free_port "$atpd_port" atpd
require_free_port "$redis_port" redis-server

# --metrics-port 0: a free port for the metrics listener, not --demo's fixed 9411 (another atpd may hold it).
"$bin/atpd" --demo --port "$atpd_port" --metrics-port 0 --log-level warning >"$work/atpd.log" 2>&1 &
atpd_pid=$!
wait_for_port "$atpd_port" || { echo "flashbench: atpd did not start:"; cat "$work/atpd.log"; exit 2; }

# atpd_run MODE ARGS...: one flash-sale run, recorded.
atpd_run() {
    local mode=$1; shift
    local status=0
    "$bin/flash-sale" --port "$atpd_port" --skus $skus --max-units $max_units --json "$work/atpd.json" "$@" \
        >"$work/atpd-run.txt" 2>"$work/atpd-run.err" || status=$?
    if [[ $status -gt 1 ]]; then echo "flashbench: flash-sale failed ($status):"; cat "$work/atpd-run.err"; exit 2; fi
    [[ $status -eq 1 ]] && { echo "   atpd $mode: CHECK FAILED"; sed 's/^/   /' "$work/atpd-run.txt"; }
    python3 - "$work/atpd.json" "$mode" >>"$results" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
c = s["check"]
print(json.dumps({"system": "atpd", "mode": sys.argv[2], "throughput": s["reservationsPerSecond"],
                  "latency_ms": s["latencyMicroseconds"]["p99"] / 1000, "latency_kind": "p99",
                  "oversold": c["oversoldUnits"], "stock": c["stockUnits"], "remaining": c["remainingUnits"],
                  "granted": c["grantedUnits"],
                  "note": "check " + ("passed" if s["checkPassed"] else "FAILED") + f', {s["errors"]} errors'}))
EOF
}

echo "== atpd --demo (release) driven by flash-sale"
# atpd_round: one round of every atpd scenario.
atpd_round() {
    atpd_run "256 conn, depth 1" --connections $connections --depth 1 --stock-per-sku $hot_stock --seconds "$seconds"
    atpd_run "256 conn, depth 16" --connections $connections --depth $depth_pipelined --stock-per-sku $hot_stock --seconds "$seconds"
    atpd_run "1000 conn, depth 1" --connections $connections_many --depth 1 --stock-per-sku $hot_stock --seconds "$seconds"
    atpd_run "1000 conn, open ${open_rate}/s" --connections $connections_many --depth 1 --stock-per-sku $hot_stock \
        --rate $open_rate --seconds "$seconds"
    atpd_run "sellout, 1000 conn" --connections $connections_many --depth 1 --stock-per-sku $sellout_stock --until-sold-out --seconds 60
}

# ---------------------------------------------------------------- Redis
reserve_lua='local units = tonumber(ARGV[1]) % 5 + 1
local stock = tonumber(redis.call("GET", KEYS[1]) or "0")
if stock >= units then
  redis.call("DECRBY", KEYS[1], units)
  return units
end
return 0'
redis_keys() { for i in $(seq 0 $((skus - 1))); do printf 'stock:%012d ' "$i"; done; }

# redis_requests PIPELINE: how many requests make about SECONDS of redis-benchmark at this pipelining
# depth (redis-benchmark stops after a request count, not a time): a short calibration run, once per
# depth, at this machine's current speed (60,000 requests, or 20,000 x depth: long enough, a second or
# two, that connecting the 256 clients does not dominate). Bounded to 10,000..50,000,000.
redis_requests() {
    local pipeline=$1 key
    local calibration=$((20000 * pipeline > 60000 ? 20000 * pipeline : 60000))
    for key in $(redis_keys); do redis-cli -p "$redis_port" SET "$key" $hot_stock >/dev/null; done
    redis-benchmark -p "$redis_port" -c $connections -n $calibration -r $skus -P "$pipeline" --csv \
        EVALSHA "$sha" 1 'stock:__rand_int__' '__rand_int__' >"$work/redis-calibration.csv" 2>"$work/redis.err" \
        || { echo "flashbench: redis-benchmark failed:" >&2; cat "$work/redis.err" >&2; exit 2; }
    python3 - "$work/redis-calibration.csv" "$seconds" <<'EOF'
import csv, sys
rps = float(list(csv.DictReader(open(sys.argv[1])))[-1]["rps"])
print(max(10000, min(50000000, int(rps * float(sys.argv[2])))))
EOF
}

# redis_run MODE STOCK REQUESTS PIPELINE
redis_run() {
    local mode=$1 stock=$2 requests=$3 pipeline=$4 key
    for key in $(redis_keys); do redis-cli -p "$redis_port" SET "$key" "$stock" >/dev/null; done
    # -r 10: each __rand_int__ is a fresh number 0..9: the key (one of the 10 SKUs) and the units
    # argument, which the script maps to 1..5.
    redis-benchmark -p "$redis_port" -c $connections -n "$requests" -r $skus -P "$pipeline" --csv \
        EVALSHA "$sha" 1 'stock:__rand_int__' '__rand_int__' >"$work/redis.csv" 2>"$work/redis.err" \
        || { echo "flashbench: redis-benchmark failed:"; cat "$work/redis.err"; exit 2; }
    local remaining
    remaining=$(for key in $(redis_keys); do redis-cli -p "$redis_port" GET "$key"; done | tr '\n' ' ')
    python3 - "$work/redis.csv" "$mode" "$stock" "$remaining" "$skus" >>"$results" <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
row = rows[-1]
stock, skus = int(sys.argv[3]), int(sys.argv[5])
remaining = [int(value) for value in sys.argv[4].split()]
oversold = sum(-value for value in remaining if value < 0)
print(json.dumps({"system": "Redis", "mode": sys.argv[2], "throughput": float(row["rps"]),
                  "latency_ms": float(row["p99_latency_ms"]), "latency_kind": "p99",
                  "oversold": oversold, "stock": stock * skus, "remaining": sum(max(0, v) for v in remaining),
                  "granted": stock * skus - sum(remaining),
                  "note": f"granted {stock * skus - sum(remaining):,} units (stock - remaining)"}))
EOF
}

if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null; then
    echo "== Redis $(redis-server --version | grep -o 'v=[0-9.]*'), Lua reserve script by EVALSHA, redis-benchmark -c $connections"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 || { echo "flashbench: redis-server did not start:"; cat "$work/redis.log"; exit 2; }
    sha=$(redis-cli -p "$redis_port" SCRIPT LOAD "$reserve_lua")
    [[ "$sha" =~ ^[0-9a-f]{40}$ ]] || { echo "flashbench: SCRIPT LOAD answered '$sha'"; cat "$work/redis.log"; exit 2; }
    requests_unpipelined=$(redis_requests 1)
    requests_pipelined=$(redis_requests $depth_pipelined)
    echo "   requests per run (about ${seconds}s each, from a calibration run): -P 1 $requests_unpipelined, -P $depth_pipelined $requests_pipelined"
    redis_round() {
        redis_run "256 conn, -P 1" $hot_stock "$requests_unpipelined" 1
        redis_run "256 conn, -P 16" $hot_stock "$requests_pipelined" $depth_pipelined
        redis_run "sellout, 256 conn, -P 1" $sellout_stock 100000 1
    }
else
    redis_round() { :; }
    echo "== Redis: skipped (redis-server, redis-benchmark or redis-cli not installed; tools/flashbench.sh --install adds them)"
fi

# ---------------------------------------------------------------- PostgreSQL
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -n "$pg_bin" && -x "$pg_bin/postgres" ]] && command -v pgbench >/dev/null && command -v psql >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
        if id postgres >/dev/null 2>&1; then pg_as=(runuser -u postgres --); else pg_bin=""; fi
    fi
fi
if [[ -n "$pg_bin" && -x "$pg_bin/postgres" ]] && command -v pgbench >/dev/null && command -v psql >/dev/null; then
    mkdir -p "$work/pg" "$work/pg/socket"
    [[ ${#pg_as[@]} -gt 0 ]] && chown -R postgres "$work/pg"
    pg_data="$work/pg/data"
    "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_data" --auth=trust --username=flash --no-sync -E UTF8 >"$work/pg-initdb.log" 2>&1 \
        || { echo "flashbench: initdb failed:"; cat "$work/pg-initdb.log"; exit 2; }
    # synchronous_commit=off: commits do not wait for the disk, as atpd --demo keeps no journal.
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg/server.log" -w \
        -o "-p $pg_port -k $work/pg/socket -c listen_addresses='' -c max_connections=300 -c synchronous_commit=off" start \
        >/dev/null || { echo "flashbench: PostgreSQL did not start:"; cat "$work/pg/server.log"; exit 2; }
    psql_run() { psql -h "$work/pg/socket" -p "$pg_port" -U flash -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
    psql_run -c "CREATE TABLE stock (sku int PRIMARY KEY, qty int NOT NULL)"
    cat >"$work/reserve.sql" <<EOF
\set sku random(0, $((skus - 1)))
\set units random(1, $max_units)
UPDATE stock SET qty = qty - :units WHERE sku = :sku AND qty >= :units;
EOF
    echo "== PostgreSQL $("$pg_bin/postgres" --version | grep -o '[0-9][0-9.]*' | head -1), pgbench with the conditional UPDATE (synchronous_commit=off)"

    # pg_run MODE STOCK CLIENTS (-T SECONDS | -t TRANSACTIONS_PER_CLIENT)
    pg_run() {
        local mode=$1 stock=$2 clients=$3; shift 3
        psql_run -c "TRUNCATE stock" -c "INSERT INTO stock SELECT s, $stock FROM generate_series(0, $((skus - 1))) s" \
            -c "VACUUM ANALYZE stock"
        rm -rf "$work/pglog"; mkdir "$work/pglog"
        (cd "$work/pglog" && pgbench -h "$work/pg/socket" -p "$pg_port" -U flash -n -f "$work/reserve.sql" \
            -c "$clients" -j 2 -l --log-prefix=tx "$@" postgres) >"$work/pgbench.txt" 2>&1 \
            || { echo "flashbench: pgbench failed:"; cat "$work/pgbench.txt"; exit 2; }
        local remaining
        remaining=$(psql_run -c "SELECT qty FROM stock ORDER BY sku" | tr '\n' ' ')
        python3 - "$work/pgbench.txt" "$work/pglog" "$mode" "$stock" "$remaining" "$skus" >>"$results" <<'EOF'
import glob, json, re, sys
text = open(sys.argv[1]).read()
tps = float(re.search(r"tps = ([0-9.]+)", text).group(1))
latencies = sorted(int(line.split()[2]) for path in glob.glob(sys.argv[2] + "/tx*") for line in open(path) if line.strip())
p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1000 if latencies else float("nan")
stock, skus = int(sys.argv[4]), int(sys.argv[6])
remaining = [int(value) for value in sys.argv[5].split()]
print(json.dumps({"system": "PostgreSQL", "mode": sys.argv[3], "throughput": tps, "latency_ms": p99, "latency_kind": "p99",
                  "oversold": sum(-v for v in remaining if v < 0), "stock": stock * skus,
                  "remaining": sum(max(0, v) for v in remaining), "granted": stock * skus - sum(remaining),
                  "note": f"granted {stock * skus - sum(remaining):,} units (stock - remaining)"}))
EOF
    }
    pg_round() {
        pg_run "16 clients" $hot_stock 16 -T "$seconds"
        pg_run "64 clients" $hot_stock 64 -T "$seconds"
        pg_run "256 clients" $hot_stock 256 -T "$seconds"
        pg_run "sellout, 64 clients" $sellout_stock 64 -t 500
    }
else
    echo "== PostgreSQL: skipped (no /usr/lib/postgresql/*/bin/postgres, pgbench or psql, or running as root without a postgres user; tools/flashbench.sh --install adds the package)"
    pg_round() { :; }
fi

# ---------------------------------------------------------------- the rounds
# Every server is up; each round runs every system's scenarios one after the other, so that a change in
# the load of a shared machine touches every system's rounds alike rather than one system's.
for round in $(seq "$rounds"); do
    echo "   round $round of $rounds: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    atpd_round
    redis_round
    pg_round
done
stop_servers

# ---------------------------------------------------------------- the table
python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
groups = {}
for row in rows:
    groups.setdefault((row["system"], row["mode"]), []).append(row)
def median_row(runs):
    ordered = sorted(runs, key=lambda r: r["throughput"])
    return ordered[len(ordered) // 2]
medians = {key: median_row(runs) for key, runs in groups.items()}
# Which atpd run each baseline is compared with.
counterpart = {"256 conn, -P 1": "256 conn, depth 1", "256 conn, -P 16": "256 conn, depth 16"}
best_pg = max((m["throughput"] for (s, mode), m in medians.items() if s == "PostgreSQL" and "sellout" not in mode), default=None)
print()
print(f'{"system":<11} {"mode":<24} {"reservations/s":>15} {"p99 ms":>8} {"stock":>12} {"granted":>12} {"oversold":>9} {"left":>12} {"atpd ×":>7}  rounds (reservations/s)')
for (system, mode), m in medians.items():
    ratio = ""
    if system == "Redis" and counterpart.get(mode) in [k[1] for k in medians if k[0] == "atpd"]:
        ratio = f'{medians[("atpd", counterpart[mode])]["throughput"] / m["throughput"]:.2f}'
    if system == "PostgreSQL" and "sellout" not in mode and ("atpd", "256 conn, depth 1") in medians:
        ratio = f'{medians[("atpd", "256 conn, depth 1")]["throughput"] / m["throughput"]:.1f}'
    oversold = max(r["oversold"] for r in groups[(system, mode)])
    all_rounds = ", ".join(f'{r["throughput"]:,.0f}' for r in groups[(system, mode)])
    print(f'{system:<11} {mode:<24} {m["throughput"]:>15,.0f} {m["latency_ms"]:>8.2f} {m["stock"]:>12,} {m["granted"]:>12,} {oversold:>9,} {m["remaining"]:>12,} {ratio:>7}  {all_rounds}')
print()
print("reservations/s: answered reservations (granted or refused) per second, median round. p99: the median round's")
print("99th percentile reservation latency (atpd: flash-sale's HDR histogram; Redis: redis-benchmark's; PostgreSQL:")
print("pgbench's per-transaction log). stock: units on sale at the start of every round. granted: units sold in the")
print("median round (atpd: summed from the replies, and checked against the server's read-back; Redis, PostgreSQL:")
print("stock - final stock, read back). oversold: the worst round's units granted beyond the stock, from each system's")
print("final stock. left: units still sellable at the end of the median round (0 expected after a sell-out).")
print("atpd ×: atpd's median throughput over the baseline's (Redis -P 1 vs atpd depth 1, -P 16 vs depth 16,")
print("PostgreSQL vs atpd 256 conn depth 1). Sell-out runs are about the accounts: their rate includes the tail of")
print("refusals, and their connection counts differ, so they get no ratio.")
goals = []
def have(*keys): return all(k in medians for k in keys)
if have(("atpd", "256 conn, depth 1"), ("Redis", "256 conn, -P 1")):
    goals.append(("atpd depth 1 / Redis Lua -P 1 >= 2", medians[("atpd", "256 conn, depth 1")]["throughput"] / medians[("Redis", "256 conn, -P 1")]["throughput"]))
if have(("atpd", "256 conn, depth 16"), ("Redis", "256 conn, -P 16")):
    goals.append(("atpd depth 16 / Redis Lua -P 16 >= 5", medians[("atpd", "256 conn, depth 16")]["throughput"] / medians[("Redis", "256 conn, -P 16")]["throughput"]))
if have(("atpd", "256 conn, depth 1")) and best_pg:
    goals.append(("atpd / best PostgreSQL >= 100", medians[("atpd", "256 conn, depth 1")]["throughput"] / best_pg))
for mode in ["1000 conn, depth 1", "1000 conn, open 10000/s"]:
    if have(("atpd", mode)):
        goals.append((f"atpd p99 ms at {mode} <= 2", medians[("atpd", mode)]["latency_ms"]))
total_oversold = sum(r["oversold"] for r in rows)
print()
print("goals (this run):")
for name, value in goals: print(f"   {name}: {value:.2f}")
print(f"   oversold units over every run of every system == 0: {total_oversold}")
failed = [r for r in rows if r["system"] == "atpd" and "FAILED" in r["note"]]
if failed: print(f"   atpd runs whose check FAILED: {len(failed)}")
EOF
echo "== host at the end: load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
