#!/usr/bin/env bash
# tools/demo.sh TRAIL: the demo app, end to end: the reference's Quick Start scaffolded into
# ./traildepot (trail components add trailbase-guest-ts, on first use), built with npm, then
# served by `trail run` on localhost:4000 (Ctrl-C stops it). Edits to traildepot/wasm/index.ts are
# picked up by `npm run dev` in traildepot/wasm, and trail reloads them without a restart.
set -euo pipefail
cd "$(dirname "$0")/.."
trail=$(realpath "$1")
depot=${TRAIL_DEMO_DIR:-traildepot}
if [ ! -f "$depot/wasm/package.json" ]; then
    "$trail" components add trailbase-guest-ts --data-dir "$depot"
fi
(cd "$depot/wasm" && npm install --no-audit --no-fund --loglevel=error && npm run build)
echo
echo "Try: curl http://localhost:4000/hello"
echo "     curl http://localhost:4000/greet/Alice"
echo "     curl -X POST http://localhost:4000/json -d '{\"message\":\"test\"}'"
echo
exec "$trail" run --data-dir "$depot" "${@:2}"
