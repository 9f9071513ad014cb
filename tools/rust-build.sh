#!/bin/sh
# tools/rust-build.sh WORKSPACE OUT_DIR [PACKAGE...]: builds every component of the Cargo
# workspace WORKSPACE (or the packages named) for WebAssembly (release) into OUT_DIR/NAME.wasm
# (NAME: the crate's name, `-` as `_`), with the build in OUT_DIR/target. The toolchain is chosen as the scaffold's build.sh does
# (sdk/rust/template/build.sh): the first cargo/rustc, on PATH or Debian's in /usr/bin, that
# has a wasm32 WASI standard library.
set -eu
ws=$1
out=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
which="--workspace"
for p in "$@"; do which="$which -p $p"; done
[ $# -eq 0 ] || which=${which#--workspace }

for pair in "${CARGO:-cargo} ${RUSTC:-rustc}" "/usr/bin/cargo /usr/bin/rustc"; do
    set -- $pair
    command -v "$1" >/dev/null 2>&1 && command -v "$2" >/dev/null 2>&1 || continue
    sysroot=$("$2" --print sysroot 2>/dev/null) || continue
    for t in wasm32-wasip1 wasm32-wasi; do
        if [ -d "$sysroot/lib/rustlib/$t/lib" ]; then
            cd "$ws"
            CARGO_TARGET_DIR="$out/target" RUSTC=$2 "$1" build --release --target "$t" \
                $which --quiet
            for f in "$out/target/$t/release/"*.wasm; do
                cmp -s "$f" "$out/$(basename "$f")" || cp "$f" "$out/"
            done
            exit 0
        fi
    done
done
echo "rust-build.sh: no Rust toolchain with a WebAssembly standard library (tools/deps.sh" \
     "installs Debian's: rustc cargo libstd-rust-dev-wasm32)" >&2
exit 1
