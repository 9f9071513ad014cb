#!/bin/sh
# `npm run build` of trailbase-wasm: compiles src/ into dist/ (JavaScript without comments, then
# declarations with them) when a source is newer than the last build, or always with --force.
# Holds an exclusive lock on node_modules/.trailbase-dist.lock while writing dist/; tools/sdk-build.sh reads dist/
# under a shared lock, so a component build never bundles half-written files.
set -eu
cd "$(dirname "$0")/.."
exec 9>>node_modules/.trailbase-dist.lock
flock -x 9
if [ "${1:-}" != "--force" ] && [ -f dist/.stamp ] &&
    [ -z "$(find src types package.json tsconfig.json tsconfig.build.json tsconfig.types.json -newer dist/.stamp -print -quit)" ]; then
    exit 0
fi
rm -rf dist
./node_modules/.bin/tsc -p tsconfig.build.json
./node_modules/.bin/tsc -p tsconfig.types.json
touch dist/.stamp
