#!/usr/bin/env bash
# bench/profile.sh TRAIL [PATH] [CONNECTIONS]: where trail's CPU goes for one endpoint of bench/app
# (default GET /hello, 16 connections). Serves the component like bench/run.sh (one worker on
# CPU 0, wrk on CPU 1), records 3 s with `perf record --call-graph dwarf`, and prints the share of
# samples under each stage of the request path (the first of these functions found walking up
# from the sampled frame), then the top symbols by self time. BODY=... makes the requests POSTs
# with that JSON body (e.g. BODY='{"message":"test"}' bench/profile.sh T /json). Needs perf;
# never pass/fail.
set -euo pipefail
TRAIL=$(realpath "${1:?usage: bench/profile.sh path/to/trail [PATH] [CONNECTIONS]}")
EP=${2:-/hello}
CONNS=${3:-16}
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "profile: perf is missing" >&2; exit 1; }
tmp=$(mktemp -d)
tpid=""
trap '[ -n "$tpid" ] && kill "$tpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/depot/wasm" "$tmp/depot/migrations"
cp bench/app/migrations/*.sql "$tmp/depot/migrations/"
./tools/sdk-build.sh bench/app "$tmp/depot/wasm/bench.wasm" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
taskset -c 0 "$TRAIL" run --address "127.0.0.1:$port" --data-dir "$tmp/depot" --runtime-threads 1 \
    --quiet >"$tmp/trail.out" 2>&1 &
tpid=$!
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/hello" >/dev/null 2>&1 && break; sleep 0.05; done
lua=()
if [ -n "${BODY:-}" ]; then
    printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' \
        "$BODY" >"$tmp/post.lua"
    lua=(-s "$tmp/post.lua")
fi
taskset -c 1 wrk -t1 -c"$CONNS" -d1s "${lua[@]}" "http://127.0.0.1:$port$EP" >/dev/null
taskset -c 1 wrk -t1 -c"$CONNS" -d5s "${lua[@]}" "http://127.0.0.1:$port$EP" >"$tmp/wrk.txt" &
wpid=$!
sleep 1
perf record -q -F 999 --call-graph dwarf,16384 -p "$tpid" -o "$tmp/perf.data" -- sleep 3 2>/dev/null
wait "$wpid"
grep -E "Requests/sec|Non-2xx" "$tmp/wrk.txt"
perf script -i "$tmp/perf.data" -F ip,sym 2>/dev/null | python3 -c '
import collections, sys
stages = ["conn_flush", "__libc_recv", "epoll_wait", "llhttp__internal__run", "http_router_match",
          "jsg_call_val", "jsg_promise_val", "jsg_from_val", "jsg_call", "jsg_run_jobs",
          "jsg_to_val", "jsg_ref_free", "sqlite3_step",
          "respond", "http__response_write"]
what = {"conn_flush": "send() (kernel, incl. waking the client)", "__libc_recv": "recv()",
        "epoll_wait": "epoll_wait()", "llhttp__internal__run": "HTTP parsing",
        "jsg_from_val": "engine: building the request object in JS",
        "jsg_call": "engine: calling the handler", "jsg_run_jobs": "engine: promise jobs",
        "jsg_call_val": "engine: the request call (arguments in, handler, result out)",
        "jsg_promise_val": "engine: reading a settled promise result",
        "jsg_to_val": "engine: reading the response object", "jsg_ref_free": "engine: freeing values",
        "sqlite3_step": "SQLite", "http_router_match": "routing"}
samples, cur = [], []
for line in sys.stdin:
    s = line.strip()
    if not s:
        if cur: samples.append(cur)
        cur = []
        continue
    p = s.split(None, 1)
    cur.append((p[1] if len(p) > 1 else "?").replace(" (inlined)", "").split("+")[0])
if cur: samples.append(cur)
c = collections.Counter()
for st in samples:
    stage = next((n for n in st if n in stages), None)
    c[stage or ("other: " + st[0])] += 1
print(f"{len(samples)} samples; share by stage of the request path:")
for k, v in c.most_common(18):
    print(f"  {100 * v / len(samples):5.1f}%  {what.get(k, k)}")
'
echo "top symbols by self time:"
perf report -i "$tmp/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
    grep "%" | head -15
