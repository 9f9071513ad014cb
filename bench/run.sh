#!/usr/bin/env bash
# bench/run.sh TRAIL: `make bench`. Installs the reference servers' npm packages (bench/package.json
# and its lockfile: better-sqlite3, bun, deno; only here, never by tools/deps.sh, so `make test`
# stays lean), builds bench/app into a component with the SDK (tools/sdk-build.sh), makes a data
# directory whose migration seeds the 10,000-row `todos` table, loads the same migration into the
# references' database, builds the Rust component (bench/rust/app) and the same Rust compiled for
# the host (bench/rust/native), then runs bench/run.py, which measures and prints the table and
# saves it under bench/results/. QUICK=1 for a fast pass; see bench/run.py for the other knobs.
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

# The Rust component (bench/rust/app: GET /hello and GET /cpu) in a data directory of its own, and
# the same /cpu compiled for the host (bench/rust/native). Either is skipped, with a word, when no
# Rust toolchain builds it (tools/deps.sh installs Debian's).
if ./tools/rust-build.sh bench/rust "$tmp/rust" bench_app >&2; then
    mkdir -p "$tmp/depot-rust/wasm"
    cp "$tmp/rust/bench_app.wasm" "$tmp/depot-rust/wasm/"
    export BENCH_RUST_DEPOT="$tmp/depot-rust"
else
    echo "bench: the Rust component did not build; its rows are skipped" >&2
fi
for pair in "${CARGO:-cargo} ${RUSTC:-rustc}" "/usr/bin/cargo /usr/bin/rustc"; do
    set -- $pair
    if CARGO_TARGET_DIR="$tmp/rust-native" RUSTC=$2 "$1" build --release --quiet \
        --manifest-path bench/rust/Cargo.toml -p bench_native >&2; then
        export BENCH_RUST_NATIVE="$tmp/rust-native/release/bench_native"
        break
    fi
done
[ -n "${BENCH_RUST_NATIVE:-}" ] || echo "bench: the native Rust server did not build; skipped" >&2

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
