#!/usr/bin/env bash
# tools/deps.sh: installs what building and testing trail needs and is missing: Debian packages
# with apt-get, npm packages with `npm ci` from the committed lockfiles. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    make gcc clang binutils pkg-config ca-certificates
    wabt                  # wasm2c and wat2wasm: the engine is translated to C at build time
    lld wasi-libc libclang-rt-14-dev-wasm32  # C guests: clang's wasm32-wasi target (tests, trailbase-guest-c)
    node-llhttp           # the HTTP parser's C sources
    sqlite3               # the sqlite3 shell: bench/ loads the references' database with it
    libcurl4-openssl-dev
    libsodium-dev         # SipHash for the key-value store's tables
    libdqlite-dev         # cluster mode: the dqlite node (Raft-replicated SQLite; pulls libraft, libuv)
    go-dqlite             # tests only: the `dqlite` shell that checks trail's dqlite client
    wrk nginx-light       # bench/ only
    curl
    python3-aiosmtpd      # tests only: the SMTP server the auth mail tests send to (loopback)
    chromium              # tests only: the sign-in page in a real browser (headless)
    rustc cargo libstd-rust-dev-wasm32  # Rust guests: Rust 1.63 with target wasm32-wasi (examples/rust, tests)
)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "deps: installing Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# npm projects with committed lockfiles; reinstall only when the lockfile changed.
for dir in . sdk/ts tests/browser examples/records-web; do
    [ -f "$dir/package-lock.json" ] || continue
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.trail-lock" 2>/dev/null; then
        echo "deps: npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        cp "$dir/package-lock.json" "$dir/node_modules/.trail-lock"
    fi
done
