#!/usr/bin/env bash
# tools/check-layers.sh [ROOT]: fails when a source file under ROOT/src is over 1,200 lines, or when a
# file under ROOT/src (default: the repository) includes a
# header of a folder in a higher layer, or of a folder the table below does not name. `make test`
# runs it. The layers, lowest first (docs/architecture.md); a folder may include its own headers and
# those of lower layers, never those of its own layer or above:
LAYERS=(
    "base"
    "loop config cron db kv wasm/runtime"
    "http wasm/wasi cluster"
    "wasm/js auth"
    "guest"
    "component"
    "jobs records"
    "worker"
    "server"
    "cli"
    "."
)
# "." is src/ itself (main.c). A new folder gets its line here and in docs/architecture.md.
set -euo pipefail
ROOT=${1:-$(dirname "$0")/..}
cd "$ROOT/src"

table=""
for i in "${!LAYERS[@]}"; do
    for d in ${LAYERS[$i]}; do table+="$d=$i "; done
done

# One awk over every file: our headers are included as "folder/name.h"; system and generated ones
# have no folder and are not looked at.
find . \( -name '*.c' -o -name '*.h' \) -print | sed 's#^\./##' | sort |
    xargs awk -v table="$table" '
    function folder(path) { return sub(/\/[^\/]*$/, "", path) ? path : "." }
    BEGIN {
        n = split(table, kv, " ")
        for (i = 1; i <= n; i++) { split(kv[i], p, "="); rank[p[1]] = p[2] + 0 }
        bad = 0
    }
    FNR == 1 {
        if (prev != "" && prevn > 1200) {
            printf "check-layers: src/%s: %d lines; a source file has at most 1,200 (split it along its seams)\n", prev, prevn > "/dev/stderr"
            bad = 1
        }
        dir = folder(FILENAME)
        if (!(dir in rank)) {
            printf "check-layers: src/%s: its folder %s/ is in no layer (add it to tools/check-layers.sh and docs/architecture.md)\n", FILENAME, dir > "/dev/stderr"
            bad = 1
        }
    }
    { prev = FILENAME; prevn = FNR }
    /^[ \t]*#[ \t]*include[ \t]*"[^"]+\/[^"]+"/ {
        if (!(dir in rank)) next
        inc = $0
        sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
        idir = folder(inc)
        if (idir == dir) next
        if (!(idir in rank)) {
            printf "check-layers: src/%s:%d: includes %s from %s/, which is in no layer\n", FILENAME, FNR, inc, idir > "/dev/stderr"
            bad = 1
        } else if (rank[idir] >= rank[dir]) {
            printf "check-layers: src/%s:%d: %s/ includes %s, but %s/ is not in a lower layer\n", FILENAME, FNR, dir, inc, idir > "/dev/stderr"
            bad = 1
        }
    }
    END {
        if (prevn > 1200) {
            printf "check-layers: src/%s: %d lines; a source file has at most 1,200 (split it along its seams)\n", prev, prevn > "/dev/stderr"
            bad = 1
        }
        exit bad
    }' || exit 1
