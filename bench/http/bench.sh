#!/usr/bin/env bash
# bench/http/bench.sh TRAIL: GET /api/healthcheck on trail against nginx's `return 200 "Ok"`, in
# the same run, with wrk. Each server is pinned to CPU 0 (trail: one worker, no access log;
# nginx: one worker, access log off), wrk to CPU 1. On a 2-core machine one wrk thread saturates
# near what nginx can serve, so the figure that separates servers is the server's CPU time per
# request: user+sys from /proc/PID/stat over the measured run, divided by the requests wrk made.
# Never pass/fail. Environment: BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 50),
# BENCH_REPEAT (runs per server, default 1; the best CPU/request of the runs is reported),
# BENCH_PIPELINE (default 1: also measure 16 pipelined requests per write; 0 to skip).
set -euo pipefail
TRAIL=$(realpath "${1:?usage: bench.sh path/to/trail}")
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-50}
REPEAT=${BENCH_REPEAT:-1}
TCK=$(getconf CLK_TCK)
for tool in wrk nginx taskset python3; do
    command -v "$tool" >/dev/null || { echo "bench-http: $tool is missing (tools/deps.sh)"; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CPU ticks (user+sys) of a process and all its threads.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# run_wrk NAME PID URL [WRK ARGS...]: prints "NAME req/s cpu_us_per_req"
run_wrk() {
    local name=$1 pid=$2 url=$3 best_line=""
    shift 3
    taskset -c 1 wrk -t1 -c"$CONNS" -d1s "$@" "$url" >/dev/null # warm-up
    for _ in $(seq "$REPEAT"); do
        local c0 c1 out reqs rps us
        c0=$(cpu_ticks "$pid")
        out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" "$@" "$url")
        c1=$(cpu_ticks "$pid")
        reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
        rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
        if grep -q "Non-2xx" <<<"$out"; then echo "bench-http: $name answered non-2xx:"; echo "$out"; fi
        us=$(awk -v c="$((c1 - c0))" -v t="$TCK" -v r="$reqs" 'BEGIN { printf "%.3f", c / t * 1e6 / r }')
        local line="$name $rps $us"
        if [ -z "$best_line" ] || awk -v a="$us" -v b="${best_line##* }" 'BEGIN { exit !(a < b) }'; then
            best_line=$line
        fi
    done
    echo "$best_line"
}

# ---- nginx: one worker, access log off, fixed response ----
nport=$(free_port)
mkdir -p "$tmp/nginx/logs"
sed -e "s|@DIR@|$tmp/nginx|g" -e "s|@PORT@|$nport|g" "$(dirname "$0")/nginx.conf.in" \
    >"$tmp/nginx/nginx.conf"
taskset -c 0 nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" &
nmaster=$!
pids+=("$nmaster")
for _ in $(seq 100); do
    nworker=$(pgrep -P "$nmaster" | head -1 || true)
    [ -n "$nworker" ] && curl -fs "http://127.0.0.1:$nport/" >/dev/null 2>&1 && break
    sleep 0.05
done
[ -n "${nworker:-}" ] || { echo "bench-http: nginx did not start"; cat "$tmp/nginx/logs/error.log"; exit 1; }

# ---- trail: one worker, quiet ----
taskset -c 0 "$TRAIL" run --address 127.0.0.1:0 --data-dir "$tmp/depot" --runtime-threads 1 \
    --quiet >"$tmp/trail.out" 2>"$tmp/trail.err" &
tpid=$!
pids+=("$tpid")
for _ in $(seq 200); do
    grep -q "listening on" "$tmp/trail.out" 2>/dev/null && break
    sleep 0.05
done
tport=$(sed -n 's|.*listening on http://[^ ]*:\([0-9]*\),.*|\1|p' "$tmp/trail.out")
[ -n "$tport" ] || { echo "bench-http: trail did not start"; cat "$tmp/trail.err"; exit 1; }

echo "bench-http: wrk -t1 -c$CONNS -d${SECS}s, servers on CPU 0, wrk on CPU 1"
n=$(run_wrk nginx "$nworker" "http://127.0.0.1:$nport/api/healthcheck")
t=$(run_wrk trail "$tpid" "http://127.0.0.1:$tport/api/healthcheck")
printf '%-8s %12s %18s\n' server "requests/s" "server CPU us/req"
for line in "$n" "$t"; do
    read -r name rps us <<<"$line"
    printf '%-8s %12s %18s\n' "$name" "$rps" "$us"
done
awk -v n="${n##* }" -v t="${t##* }" 'BEGIN { printf "trail/nginx CPU per request: %.2fx (target <= 1.10x)\n", t / n }'

# Pipelined (16 requests per write): system calls are shared, so parsing and responding show.
if [ "${BENCH_PIPELINE:-1}" = 1 ]; then
    here=$(dirname "$(realpath "$0")")
    echo "bench-http: the same, 16 pipelined requests per write (wrk -s pipeline.lua)"
    np=$(run_wrk nginx "$nworker" "http://127.0.0.1:$nport/api/healthcheck" -s "$here/pipeline.lua")
    tp=$(run_wrk trail "$tpid" "http://127.0.0.1:$tport/api/healthcheck" -s "$here/pipeline.lua")
    printf '%-8s %12s %18s\n' server "requests/s" "server CPU us/req"
    for line in "$np" "$tp"; do
        read -r name rps us <<<"$line"
        printf '%-8s %12s %18s\n' "$name" "$rps" "$us"
    done
    awk -v n="${np##* }" -v t="${tp##* }" 'BEGIN { printf "trail/nginx CPU per request, pipelined: %.2fx\n", t / n }'
fi
