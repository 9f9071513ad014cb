#!/usr/bin/env bash
# tools/check-layers.sh [ROOT]: fails when a file under ROOT/src (default: the repository) includes a
# header of a folder in a higher layer, or of a folder the table below does not name. `make test`
# runs it. The layers, lowest first (docs/architecture.md); a folder may include its own headers and
# those of lower layers, never those of its own layer or above:
LAYERS=(
    "base"
    "loop config cron db kv wasm/runtime"
    "http wasm/wasi"
    "wasm/js"
    "guest"
    "component"
    "jobs"
    "worker"
    "server"
    "cli"
    "."
)
# "." is src/ itself (main.c). A new folder gets its line here and in docs/architecture.md.
set -euo pipefail
ROOT=${1:-$(dirname "$0")/..}
cd "$ROOT/src"

declare -A rank
for i in "${!LAYERS[@]}"; do
    for d in ${LAYERS[$i]}; do rank[$d]=$i; done
done

bad=0
while IFS= read -r f; do
    f=${f#./}
    dir=$(dirname "$f")
    if [ -z "${rank[$dir]+x}" ]; then
        echo "check-layers: src/$f: its folder $dir/ is in no layer (add it to tools/check-layers.sh and docs/architecture.md)" >&2
        bad=1
        continue
    fi
    # Our headers are included as "folder/name.h"; system and generated ones have no folder.
    while IFS=: read -r line inc; do
        idir=$(dirname "$inc")
        [ "$idir" = "$dir" ] && continue
        if [ -z "${rank[$idir]+x}" ]; then
            echo "check-layers: src/$f:$line: includes $inc from $idir/, which is in no layer" >&2
            bad=1
        elif [ "${rank[$idir]}" -ge "${rank[$dir]}" ]; then
            echo "check-layers: src/$f:$line: $dir/ includes $inc, but $idir/ is not in a lower layer" >&2
            bad=1
        fi
    done < <(grep -n -o -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]+/[^"]+"' "$f" |
        sed -E 's/^([0-9]+):.*"([^"]+)"$/\1:\2/')
done < <(find . -name '*.c' -o -name '*.h' | sort)
exit $bad
