#!/usr/bin/env bash
# tools/sdk-build.sh DIR [OUT]: builds the component of a directory of TypeScript sources
# (DIR/index.ts or DIR/src/index.ts) with the repository's SDK into OUT (default
# DIR/dist/component.wasm), the way `npm run build` does in a scaffolded project. DIR needs no
# package.json or node_modules: `trailbase-wasm/*` imports resolve to sdk/ts.
# Build errors print as file:line:col and exit 1.
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: tools/sdk-build.sh DIR [OUT]" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(cd "$1" && pwd)"
out="${2:-$dir/dist/component.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
sdk="$root/sdk/ts"
[ -d "$sdk/node_modules" ] || { echo "sdk-build: sdk/ts/node_modules missing; run tools/deps.sh" >&2; exit 1; }
"$sdk/lib/build-sdk.sh"
exec 9>>"$sdk/node_modules/.trailbase-dist.lock"
flock -s 9
node "$sdk/bin/trailbase-wasm.mjs" build --dir "$dir" --out "$out"
