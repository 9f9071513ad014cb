#!/usr/bin/env bash
# bench/callgrind.sh TRAIL [PATH] [N]: instructions trail executes per request for one endpoint of
# bench/app, counted by callgrind (repeatable whatever the machine's load). Serves the bench app
# with one worker under valgrind twice, for N and for 2N keep-alive requests, and prints
# (I(2N) - I(N)) / N (the median of three such pairs), so that start-up and shutdown cancel out. Never pass/fail.
# WASM=FILE serves that component instead of bench/app (a compiled one, e.g. bench/c built by
# tools/c-build.sh, is compiled once by the first run and loaded from a shared cache after).
set -euo pipefail
TRAIL=$(realpath "${1:?usage: bench/callgrind.sh path/to/trail [PATH] [N]}")
EP=${2:-/hello}
N=${3:-2000}
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "callgrind: valgrind is missing" >&2; exit 1; }
tmp=$(mktemp -d)
tpid=""
trap '[ -n "$tpid" ] && kill "$tpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT; [ -n "${KEEP:-}" ] && trap - EXIT
mkdir -p "$tmp/depot/wasm" "$tmp/depot/migrations"
cp bench/app/migrations/*.sql "$tmp/depot/migrations/"
if [ -n "${WASM:-}" ]; then
    cp "$WASM" "$tmp/depot/wasm/bench.wasm"
    mkdir -p "$tmp/cache" && ln -s "$tmp/cache" "$tmp/depot/cache"
else
    ./tools/sdk-build.sh bench/app "$tmp/depot/wasm/bench.wasm" >/dev/null
fi

count() { # count REQUESTS [TOOL...]: total instructions of a server run that answered REQUESTS
    local n=$1 port
    shift
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    rm -rf "$tmp/run" && cp -a "$tmp/depot" "$tmp/run"
    "$@" "$TRAIL" run --address "127.0.0.1:$port" --data-dir "$tmp/run" --runtime-threads 1 \
        --quiet >"$tmp/trail.out" 2>&1 &
    tpid=$!
    python3 - "$port" "$EP" "$n" <<'PY'
import http.client, sys, time
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60); c.request("GET", "/hello")
        c.getresponse().read(); break
    except OSError:
        time.sleep(0.1)
for _ in range(n):
    c.request("GET", path); r = c.getresponse(); r.read()
    if r.status != 200: sys.exit(f"callgrind: GET {path} answered {r.status}")
PY
    kill -INT "$tpid"; wait "$tpid" || true; tpid=""
    [ -f "$tmp/cg" ] && awk '/^summary:|^totals:/ {print $2; exit}' "$tmp/cg" && rm -f "$tmp/cg"
    return 0
}
# One run without valgrind applies the migrations, so that both measured runs start alike.
count 0 >/dev/null
# Three pairs of runs, and their median: a run can catch a timer or a reload the other did not.
per=()
for _ in 1 2 3; do
    a=$(count "$N" valgrind --tool=callgrind --callgrind-out-file="$tmp/cg")
    b=$(count $((2 * N)) valgrind --tool=callgrind --callgrind-out-file="$tmp/cg")
    per+=($(( (b - a) / N )))
done
med=$(printf '%s\n' "${per[@]}" | sort -n | sed -n 2p)
echo "GET $EP: $med instructions per request (callgrind, median of ${per[*]}; $N and $((2 * N)) requests)"
