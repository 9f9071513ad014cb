#!/bin/sh
# build.sh: builds this project into dist/component.wasm, where trail loads it from.
#   ./build.sh           build once (cargo build --release for WebAssembly, then copy)
#   ./build.sh --watch   build, then again on every change to src/, Cargo.toml or the SDK
# It uses the first Rust toolchain that has a WebAssembly standard library: the cargo and rustc
# on PATH (rustup: `rustup target add wasm32-wasip1`), else Debian's in /usr/bin (`apt-get
# install rustc cargo libstd-rust-dev-wasm32`, target wasm32-wasi). CARGO and RUSTC choose one.
set -eu
cd "$(dirname "$0")"
mode=${1:-}
case "$mode" in
"" | --watch) ;;
*)
    echo "usage: ./build.sh [--watch]" >&2
    exit 2
    ;;
esac

# Prints "CARGO RUSTC TARGET" for the first toolchain with a wasm32 WASI standard library.
pick_toolchain() {
    for pair in "${CARGO:-cargo} ${RUSTC:-rustc}" "/usr/bin/cargo /usr/bin/rustc"; do
        set -- $pair
        command -v "$1" >/dev/null 2>&1 && command -v "$2" >/dev/null 2>&1 || continue
        sysroot=$("$2" --print sysroot 2>/dev/null) || continue
        for target in wasm32-wasip1 wasm32-wasi; do
            if [ -d "$sysroot/lib/rustlib/$target/lib" ]; then
                echo "$1 $2 $target"
                return 0
            fi
        done
    done
    return 1
}

if ! toolchain=$(pick_toolchain); then
    echo "build.sh: no Rust toolchain with a WebAssembly standard library was found." >&2
    echo "  with rustup:  rustup target add wasm32-wasip1" >&2
    echo "  on Debian:    apt-get install rustc cargo libstd-rust-dev-wasm32" >&2
    exit 1
fi
set -- $toolchain
cargo=$1 rustc=$2 target=$3
name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1 | tr - _)

build() {
    RUSTC=$rustc "$cargo" build --release --target "$target" || return 1
    out="target/$target/release/$name.wasm"
    mkdir -p dist
    if cmp -s "$out" dist/component.wasm; then
        echo "dist/component.wasm is up to date"
        return 0
    fi
    # Renamed into place: trail never sees half a file.
    cp "$out" dist/.component.wasm.tmp
    mv dist/.component.wasm.tmp dist/component.wasm
    echo "wrote dist/component.wasm ($(wc -c < dist/component.wasm) bytes, $target)"
}

if [ "$mode" != "--watch" ]; then
    build
    exit
fi

# --watch: poll the sources once a second (no file-watching tool needed).
state() {
    find src Cargo.toml trailbase-wasm -type f ! -path '*/target/*' -exec ls -l --time-style=+%s.%N {} + 2>/dev/null | cksum
}
last=""
while :; do
    now=$(state)
    if [ "$now" != "$last" ]; then
        last=$now
        build || echo "build.sh: the build failed; the last dist/component.wasm keeps serving" >&2
        echo "build.sh: watching src/, Cargo.toml and trailbase-wasm/ (Ctrl-C stops)"
    fi
    sleep 1
done
