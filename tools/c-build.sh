#!/usr/bin/env bash
# tools/c-build.sh DIR OUT: builds the C component of a directory (DIR/*.c) with the repository's
# C SDK (sdk/c/trailbase.h) into OUT, as a scaffolded project's Makefile does: clang's wasm32-wasi
# target, wasi-libc, a WASI reactor.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: tools/c-build.sh DIR OUT" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$(dirname "$2")"
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror -I"$root/sdk/c" \
    -Wl,--strip-debug -o "$2.tmp" "$1"/*.c
mv "$2.tmp" "$2"
