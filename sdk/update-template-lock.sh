#!/usr/bin/env bash
# sdk/update-template-lock.sh: regenerates sdk/template/package-lock.json after a change of the
# SDK's dependencies or of the template's package.json. Run it, test, commit the lockfile.
#
# DESIGN: the scaffolded project ships this lockfile so that `npm install` installs exactly the
# versions sdk/ts was tested with, and needs no registry metadata: with versions and integrity
# hashes in the lockfile, npm fetches (or takes from its cache) the tarballs only. The entry of
# trailbase-wasm itself (the tarball next to the project) carries no integrity hash, so that a
# rebuilt tarball of the same version installs without a lockfile conflict.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/tools/sdk-pack.sh" "$tmp/pack" >/dev/null
cp "$root/sdk/template/package.json" "$tmp/"
cp "$tmp"/pack/trailbase-wasm-*.tgz "$tmp/"
(cd "$tmp" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund --loglevel=error)
node -e '
const fs = require("fs");
const lock = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
delete lock.packages["node_modules/trailbase-wasm"].integrity;
fs.writeFileSync(process.argv[2], JSON.stringify(lock, null, 2) + "\n");
' "$tmp/package-lock.json" "$root/sdk/template/package-lock.json"
echo "wrote sdk/template/package-lock.json"
