#!/usr/bin/env bash
# tools/demo.sh TRAIL: serves the demo app from ./traildepot on localhost:4000.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "$1" run
