#!/usr/bin/env bash
# bench/run.sh TRAIL: `make bench`. Installs the reference servers' npm packages (bench/package.json
# and its lockfile: better-sqlite3, bun, deno; only here, never by tools/deps.sh, so `make test`
# stays lean), builds bench/app into a component with the SDK (tools/sdk-build.sh), makes a data
# directory whose migration seeds the 10,000-row `todos` table, loads the same migration into the
# references' database, then runs bench/run.py, which measures and prints the table and saves it
# under bench/results/. QUICK=1 for a fast pass; see bench/run.py for the other knobs.
# Never pass/fail.
set -euo pipefail
TRAIL=$(realpath "${1:?usage: bench/run.sh path/to/trail}")
cd "$(dirname "$0")/.."
for tool in wrk nginx taskset python3 sqlite3 node npm; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (tools/deps.sh)" >&2; exit 1; }
done

# The references' packages; reinstalled only when the lockfile changed. better-sqlite3 compiles
# with node-gyp against the system's Node.js headers. A failure skips the references it breaks.
if ! cmp -s bench/package-lock.json bench/node_modules/.trail-lock 2>/dev/null; then
    echo "bench: npm ci in bench/ (better-sqlite3 builds from source: a minute or two)" >&2
    if (cd bench && npm ci --no-audit --no-fund --loglevel=error); then
        cp bench/package-lock.json bench/node_modules/.trail-lock
    else
        echo "bench: npm ci in bench/ failed; the references it installs will be skipped" >&2
    fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/depot/wasm" "$tmp/depot/migrations"
cp bench/app/migrations/*.sql "$tmp/depot/migrations/"
./tools/sdk-build.sh bench/app "$tmp/depot/wasm/bench.wasm" >&2
cat bench/app/migrations/*.sql | sqlite3 "$tmp/ref.db"
# The compiled component (bench/c, C): built with the C SDK, compiled by `trail components add`
# into its data directory's cache (the time is reported), and its /cpu loop compiled natively.
depot_c=""
if command -v clang >/dev/null && ./tools/c-build.sh bench/c "$tmp/bench-c.wasm" >&2; then
    depot_c="$tmp/depot-c"
    start=$(date +%s%N)
    "$TRAIL" components add "$tmp/bench-c.wasm" --data-dir "$depot_c" >&2
    export BENCH_C_COMPILE_MS=$(( ($(date +%s%N) - start) / 1000000 ))
    cc -O2 -o "$tmp/bench_spin" bench/c/native/bench_spin.c
    BENCH_NATIVE_CPU_US=$("$tmp/bench_spin" | sed -n 's/.*: \([0-9.]*\) us per call.*/\1/p')
    export BENCH_NATIVE_CPU_US
else
    echo "bench: bench/c not built (clang's wasm32-wasi target missing: tools/deps.sh)" >&2
fi
python3 bench/run.py "$TRAIL" "$tmp/depot" "$tmp/ref.db" $depot_c
