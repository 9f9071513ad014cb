#!/usr/bin/env bash
# tools/sdk-pack.sh [OUTDIR]: packs the TypeScript SDK (sdk/ts) into OUTDIR/trailbase-wasm-0.1.0.tgz
# (default OUTDIR: build/sdk), the tarball that `trail components add trailbase-guest-ts` writes
# next to the scaffolded project (sdk/template). Prints the tarball's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/build/sdk}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$root/sdk/ts"
[ -d node_modules ] || { echo "sdk-pack: sdk/ts/node_modules missing; run tools/deps.sh" >&2; exit 1; }
./lib/build-sdk.sh
name="$(npm pack --ignore-scripts --silent --pack-destination "$out" 2>/dev/null | tail -n 1)"
echo "$out/$name"
