#!/usr/bin/env bash
# Snapshot, stall and restart figures of issue 13 at a given size (default the issue's 10M cells):
#   1. a durable atpd (release) ingests CELLS cells (SKUs x 1,000 locations, one receipt each);
#   2. pipelined single-cell queries run (atp-load --scenario pipelined --depth 16) for QUERY_SECONDS
#      twice: once alone (the baseline), once while `atp snapshot now` runs; the longest query
#      latency of each is the stall figure, the snapshot's own line its duration;
#   3. RECORDS more single-event requests are journaled (one journal record each);
#   4. atpd is killed with SIGKILL and restarted: the "recovered" line gives the recovery time,
#      the first answered ping the time to serving.
# Prints one summary line per figure, with the load average. Temporary data is removed at the end;
# the generated CSVs are kept in $TMPDIR (atp-snapshot-bench-*.csv) for the next run.
#
# Usage: tools/snapshot-bench.sh [CELLS=10000000] [RECORDS=1000000] [QUERY_SECONDS=12] [-- atpd flags...]
#   e.g. tools/snapshot-bench.sh 1000000 100000 6 -- --thread-per-core
# Run time at 10M cells: about 3 minutes of ingest, 2 x QUERY_SECONDS, the records (about a
# minute per million), and the restart; plus the build. Needs about 2.5 GB of free disk at 10M.
set -euo pipefail
cd "$(dirname "$0")/.."
cells=${1:-10000000}
records=${2:-1000000}
query_seconds=${3:-12}
shift $(( $# >= 3 ? 3 : $# ))
[[ ${1:-} == -- ]] && shift
[[ "$cells" =~ ^[0-9]+$ && "$records" =~ ^[0-9]+$ && "$query_seconds" =~ ^[0-9]+$ && $cells -ge 1000 ]] ||
    { echo "usage: tools/snapshot-bench.sh [CELLS>=1000] [RECORDS] [QUERY_SECONDS] [-- atpd flags...]" >&2; exit 64; }
command -v python3 >/dev/null || { SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 >/dev/null; }

port=7481 metrics_port=9481
work=$(mktemp -d -t snapshot-bench.XXXXXX)
pid=""
cleanup() {
    [[ -n $pid ]] && { kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "snapshot-bench.sh: $*" >&2; }
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { log "port $port is in use"; exit 1; }

log "building atpd, atp and atp-load (release, --scratch-path .build-bench)"
swift build -c release --scratch-path .build-bench --product atpd >"$work/build.log" 2>&1 &&
    swift build -c release --scratch-path .build-bench --product atp >>"$work/build.log" 2>&1 &&
    swift build -c release --scratch-path .build-bench --product atp-load >>"$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log"; exit 2; }
bin=$(swift build -c release --scratch-path .build-bench --show-bin-path)

skus=$(( cells / 1000 ))
cells_csv=${TMPDIR:-/tmp}/atp-snapshot-bench-cells-$cells.csv
more_csv=${TMPDIR:-/tmp}/atp-snapshot-bench-more-$records.csv
[[ -s $cells_csv ]] || { log "writing $cells_csv"; python3 - "$skus" "$cells_csv.part" <<'EOF'
import sys
skus, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as out:
    out.write("kind,sku,location,quantity,sequence\n")
    sequence = 0
    for s in range(skus):
        sku = f"SKU-{s:06d}"
        out.write("".join(f"receive,{sku},L{l:04d},1,{sequence + l + 1}\n" for l in range(1000)))
        sequence += 1000
EOF
mv "$cells_csv.part" "$cells_csv"; }
[[ -s $more_csv || $records -eq 0 ]] || { log "writing $more_csv"; python3 - "$skus" "$records" "$more_csv.part" <<'EOF'
import sys
skus, records, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, "w") as out:
    out.write("kind,sku,location,quantity,sequence\n")
    for n in range(records):
        out.write(f"receive,SKU-{n % skus:06d},L{(n // skus) % 1000:04d},1,{n + 1}\n")
EOF
mv "$more_csv.part" "$more_csv"; }

export ATPD_TOKENS='bench:query+reserve+ingest+admin:demo-admin'
start_atpd() {
    "$bin/atpd" --port "$port" --metrics-port "$metrics_port" --data-dir "$work/data" --snapshot-interval-seconds 0 \
        "$@" >>"$work/atpd.log" 2>&1 &
    pid=$!
}
wait_serving() { # prints the seconds until a ping is answered
    local start=$1
    for _ in $(seq 6000); do
        "$bin/atp" --port "$port" --token demo-admin ping >/dev/null 2>&1 && {
            python3 -c "import time,sys; print(f'{time.time() - float(sys.argv[1]):.2f}')" "$start"; return 0; }
        kill -0 "$pid" 2>/dev/null || { tail -20 "$work/atpd.log"; log "atpd exited"; exit 1; }
        sleep 0.05
    done
    log "atpd did not answer"; exit 1
}
now() { python3 -c 'import time; print(time.time())'; }
rss_mib() { awk '/VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$pid/status"; }

start_atpd "$@"
wait_serving "$(now)" >/dev/null
log "ingesting $cells cells (atpd $*)"
ingest_start=$(now)
"$bin/atp" --port "$port" --token demo-admin ingest "$cells_csv" --source erp --batch 10000 >"$work/ingest.log" 2>&1 ||
    { tail -5 "$work/ingest.log"; exit 1; }
ingest_seconds=$(python3 -c "import time,sys; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$ingest_start")

queries() { # json-file
    "$bin/atp-load" --port "$port" --token demo-admin --scenario pipelined --depth 16 --seconds "$query_seconds" --json 1 >"$1"
}
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

log "queries alone for $query_seconds s"
queries "$work/alone.json"
log "queries for $query_seconds s with a snapshot"
queries "$work/during.json" &
load_pid=$!
sleep $(( query_seconds / 4 + 1 ))
"$bin/atp" --port "$port" --token demo-admin --timeout-ms 600000 snapshot now >"$work/snapshot.log" 2>&1 || { cat "$work/snapshot.log"; exit 1; }
wait "$load_pid"
rss=$(rss_mib)

if (( records > 0 )); then
    log "journaling $records single-event requests"
    "$bin/atp" --port "$port" --token demo-admin ingest "$more_csv" --source feed2 --batch 1 >"$work/more.log" 2>&1 ||
        { tail -5 "$work/more.log"; exit 1; }
fi
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
log "restarting after SIGKILL"
restart_start=$(now)
start_atpd "$@"
serving=$(wait_serving "$restart_start")
recovered=$(grep -o 'recovered.*' "$work/atpd.log" | tail -1 | grep -o '[0-9]* ms' | tail -1)

echo "snapshot-bench.sh: $cells cells, $records journal records, atpd $*; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  ingest of the cells: $ingest_seconds s; atpd resident after the snapshot: $rss MiB"
echo "  snapshot: $(tail -1 "$work/snapshot.log"); $(grep -o 'snapshot cut: [^"]*' "$work/atpd.log" | tail -1)"
echo "  queries alone:         max $(field "$work/alone.json" maxMicroseconds) µs, p99.9 $(field "$work/alone.json" p999Microseconds) µs, $(field "$work/alone.json" requestsPerSecond) /s"
echo "  queries with snapshot: max $(field "$work/during.json" maxMicroseconds) µs, p99.9 $(field "$work/during.json" p999Microseconds) µs, $(field "$work/during.json" requestsPerSecond) /s"
echo "  restart after SIGKILL: recovery $recovered, serving after $serving s"
