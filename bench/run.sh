#!/usr/bin/env bash
# Candado's benchmarks, one command (`make bench` calls it). About 4 minutes.
#
# Server on one core, load generator on the other (taskset). Every throughput number is
# reported as a ratio to the reference measured in the same run: candado-bare (the same
# HTTP layer answering a fixed 80-byte JSON) under the same wrk settings.
#
#   1 reference   candado-bare, POST with a 72-byte JSON body          wrk
#   - control     candado-bare, the request generator of scenario 2    wrk (what Lua costs wrk)
#   2 distinct    acquire of a never-seen resource per request         wrk + acquire_distinct.lua
#   3 cycle       acquire -> release of that token, repeated           wrk + acquire_release.lua
#   4 contended   acquire of one held resource (acquired:false)        wrk + contended.lua
#   5 info        GET /api/locks/info/<held resource>                  wrk
#   6 memory      1,000,000 live locks, 30-byte names: server VmRSS    candado-loadgen load
#   7 expiry      1,000,000 locks with one deadline; a probe measures  candado-loadgen load --probe
#                 stats/acquire latency while they expire
#   8 hand-off    100 waiters chained on one resource, release->grant  candado-loadgen handoff
#
# Scenarios 1-5 run in rounds (each round runs every scenario once) so that drift on this
# shared machine hits all of them alike; the table shows the median of the rounds.
# Raw output goes to bench/results/<UTC time>/ (bench/results/latest points at it).
#
# Knobs (environment): BENCH_DURATION (s per wrk run, 3), BENCH_RUNS (5), BENCH_CONNS (50),
# BENCH_LOCKS (1000000), BENCH_PORT (first port, 3200), SERVER_CPU (0), CLIENT_CPU (1),
# BUILD (build directory, build).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
DUR=${BENCH_DURATION:-3}
RUNS=${BENCH_RUNS:-5}
CONNS=${BENCH_CONNS:-50}
LOCKS=${BENCH_LOCKS:-1000000}
PORT0=${BENCH_PORT:-3200}
SCPU=${SERVER_CPU:-0}
CCPU=${CLIENT_CPU:-1}
DISTINCT_TTL=120000 # scenario 2: longer than the whole wrk phase, so nothing expires in it

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench/results/$stamp
mkdir -p "$OUT"
ln -sfn "$stamp" bench/results/latest

# ---- build ----
echo "== build ($BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target candado candado-bare candado-loadgen >/dev/null
LOADGEN=$BUILD/candado-loadgen

# ---- machine ----
{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "kernel=$(uname -r)"
    echo "wrk=$(wrk --version 2>&1 | head -1 | awk '{print $2}')"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "duration_s=$DUR"
    echo "runs=$RUNS"
    echo "conns=$CONNS"
    echo "locks=$LOCKS"
    echo "server_cpu=$SCPU"
    echo "client_cpu=$CCPU"
    echo "clk_tck=$(getconf CLK_TCK)"
    echo "distinct_ttl_ms=$DISTINCT_TTL"
} >"$OUT/machine.txt"

# ---- servers: ours only, stopped by pid ----
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# start NAME PORT CMD... : runs CMD on the server core, waits until it answers; sets SPID
start() {
    local name=$1 port=$2
    shift 2
    taskset -c "$SCPU" "$@" >"$OUT/server-$name.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    for _ in $(seq 100); do
        "$LOADGEN" req --port "$port" GET /healthz >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "server $name did not start (see $OUT/server-$name.log)" >&2
    exit 1
}
stop() {
    kill "$1"
    wait "$1" 2>/dev/null || true
}
candado() { start "$1" "$2" "$BUILD/candado" serve --port "$2" --log-level warn; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# wrk_run NAME PID URL ROUND [SCRIPT [script args...]] : one run, raw text + server CPU
# ticks to a file
wrk_run() {
    local name=$1 pid=$2 url=$3 round=$4 script=()
    shift 4
    if (($# > 0)); then
        script=(-s "$1" "$url" --)
        shift
    else
        script=("$url")
    fi
    local f="$OUT/wrk-$name-$round.txt" t0 t1 w0 w1
    t0=$(ticks "$pid")
    w0=$(date +%s%N)
    taskset -c "$CCPU" wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "${script[@]}" "$@" >"$f" 2>&1 ||
        { echo "wrk failed: $f" >&2; cat "$f" >&2; exit 1; }
    t1=$(ticks "$pid")
    w1=$(date +%s%N)
    echo "server_cpu_ticks=$((t1 - t0))" >>"$f"
    echo "wall_ms=$(((w1 - w0) / 1000000))" >>"$f"
    printf '  %-10s %s req/s\n' "$name" "$(awk '/^Requests\/sec/ {print $2}' "$f")"
}

# ---- scenarios 1-5 ----
P_BARE=$PORT0 P_DIST=$((PORT0 + 1)) P_CYC=$((PORT0 + 2)) P_HOT=$((PORT0 + 3)) P_INFO=$((PORT0 + 4))
start bare "$P_BARE" "$BUILD/candado-bare" "$P_BARE"
BARE=$SPID
candado distinct "$P_DIST"
DIST=$SPID
candado cycle "$P_CYC"
CYC=$SPID
candado contended "$P_HOT"
HOT=$SPID
candado info "$P_INFO"
INFO=$SPID
HELD=factura:create:FFF1
"$LOADGEN" req --port "$P_INFO" POST /api/locks/acquire \
    "{\"resource\":\"$HELD\",\"clientId\":\"bench-holder\",\"ttl\":300000}" >/dev/null

A=/api/locks/acquire
for r in $(seq "$RUNS"); do
    echo "== round $r/$RUNS (wrk -t1 -c$CONNS -d${DUR}s, server on cpu $SCPU, wrk on cpu $CCPU)"
    wrk_run reference "$BARE" "http://127.0.0.1:$P_BARE$A" "$r" bench/wrk/reference.lua
    wrk_run control "$BARE" "http://127.0.0.1:$P_BARE$A" "$r" bench/wrk/acquire_distinct.lua "x$r" "$DISTINCT_TTL"
    wrk_run distinct "$DIST" "http://127.0.0.1:$P_DIST$A" "$r" bench/wrk/acquire_distinct.lua "$r" "$DISTINCT_TTL"
    wrk_run cycle "$CYC" "http://127.0.0.1:$P_CYC$A" "$r" bench/wrk/acquire_release.lua "$r"
    wrk_run contended "$HOT" "http://127.0.0.1:$P_HOT$A" "$r" bench/wrk/contended.lua
    wrk_run info "$INFO" "http://127.0.0.1:$P_INFO/api/locks/info/$HELD" "$r"
done
for s in distinct:$P_DIST cycle:$P_CYC contended:$P_HOT info:$P_INFO; do
    "$LOADGEN" req --port "${s#*:}" GET /api/locks/stats >"$OUT/stats-${s%%:*}.json"
done
echo "distinct_rss_kb=$(rss_kb "$DIST")" >>"$OUT/machine.txt"
for p in "$BARE" "$DIST" "$CYC" "$HOT" "$INFO"; do stop "$p"; done
PIDS=()

# ---- 6: memory ----
echo "== memory: $LOCKS live locks, 30-byte names"
P_MEM=$((PORT0 + 5))
candado memory "$P_MEM"
MEM=$SPID
{
    echo "rss_before_kb=$(rss_kb "$MEM")"
    taskset -c "$CCPU" "$LOADGEN" load --port "$P_MEM" --count "$LOCKS" --ttl 300000 \
        --prefix bench:memory:
    echo "rss_after_kb=$(rss_kb "$MEM")"
    echo "stats=$("$LOADGEN" req --port "$P_MEM" GET /api/locks/stats)"
} >"$OUT/memory.txt"
stop "$MEM"
PIDS=()
grep -E '^(rss|load_rate|load_seconds)' "$OUT/memory.txt" | sed 's/^/  /'

# ---- 7: mass expiry ----
# The deadline must fall after loading ends: 1.5 x the load time just measured, plus 5 s.
load_s=$(awk -F= '/^load_seconds/ {print $2}' "$OUT/memory.txt")
DEADLINE_MS=$(awk -v s="$load_s" 'BEGIN {printf "%d", s * 1500 + 5000}')
echo "== mass expiry: $LOCKS locks ending together $DEADLINE_MS ms after the load starts"
P_EXP=$((PORT0 + 6))
candado expiry "$P_EXP"
EXP=$SPID
{
    echo "rss_before_kb=$(rss_kb "$EXP")"
    echo "deadline_in_ms=$DEADLINE_MS"
    taskset -c "$CCPU" "$LOADGEN" load --port "$P_EXP" --count "$LOCKS" --deadline-in "$DEADLINE_MS" \
        --probe --prefix bench:expiry:
    echo "rss_after_expiry_kb=$(rss_kb "$EXP")"
    echo "stats=$("$LOADGEN" req --port "$P_EXP" GET /api/locks/stats)"
} >"$OUT/expiry.txt"
stop "$EXP"
PIDS=()
grep -E '^(probe_max_ms|active_zero|cleanup_done)' "$OUT/expiry.txt" | sed 's/^/  /'

# ---- 8: hand-off ----
echo "== hand-off: 100 waiters chained on one resource"
P_HO=$((PORT0 + 7))
candado handoff "$P_HO"
HO=$SPID
taskset -c "$CCPU" "$LOADGEN" handoff --port "$P_HO" --waiters 100 --rounds 5 >"$OUT/handoff.txt"
stop "$HO"
PIDS=()
grep -E '^handoff_p' "$OUT/handoff.txt" | sed 's/^/  /'

echo
python3 bench/summarize.py "$OUT" | tee "$OUT/summary.md"
