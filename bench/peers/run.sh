#!/usr/bin/env bash
# Side-by-side trace benchmark: kith and the peer CRDTs (diamond-types, Yjs,
# Loro, Automerge; pinned in package.json) over the same editing traces, one
# table. `make bench-crdt` runs it on tests/data/traces/*.json.gz.
#
#   bench/peers/run.sh [TRACE...]        (env: KITH=path/to/kith, RUNS=5,
#                                         PEERS="diamond-types yjs loro automerge",
#                                         RESULTS=file to keep the JSON lines)
#
# The npm packages go into bench/peers/node_modules (not committed) the first
# time. Each peer runs each trace in its own node process (see peers.mjs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
KITH=${KITH:-$root/build/kith}
RUNS=${RUNS:-5}
PEERS=${PEERS:-diamond-types yjs loro automerge}
TIMEOUT=${TIMEOUT:-900}

if [ $# -eq 0 ]; then
    set -- "$root"/tests/data/traces/*.json.gz
fi
command -v node >/dev/null || { echo "run.sh: node is needed for the peers" >&2; exit 1; }

# Installs exactly the pinned versions when any is missing or differs.
if ! node "$here/peers.mjs" --check; then
    echo "run.sh: installing the peers (npm) into bench/peers/node_modules" >&2
    (cd "$here" && npm install --no-audit --no-fund --no-save >&2)
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT

if [ -x "$KITH" ]; then
    ver=$("$KITH" --version 2>/dev/null | awk '{print $2}')
    for t in "$@"; do
        echo "run.sh: kith $(basename "$t")" >&2
        if ! "$KITH" bench trace --json --runs "$RUNS" "$t" |
            sed "s/^{/{\"impl\":\"kith\",\"version\":\"$ver\",/" >>"$out"; then
            n=$(basename "$t"); n=${n%.gz}; n=${n%.json}
            echo "{\"impl\":\"kith\",\"trace\":\"$n\",\"error\":\"kith bench trace failed (see above)\"}" >>"$out"
        fi
    done
else
    echo "run.sh: $KITH not built; kith's rows are missing (make, or set KITH=)" >&2
fi

for p in $PEERS; do
    for t in "$@"; do
        echo "run.sh: $p $(basename "$t")" >&2
        n=$(basename "$t"); n=${n%.gz}; n=${n%.json}
        if ! timeout "$TIMEOUT" node --expose-gc --max-old-space-size=8192 \
                "$here/peers.mjs" "$p" "$t" "$RUNS" >>"$out" 2>"$out.err"; then
            tail -3 "$out.err" >&2 || true
            echo "{\"impl\":\"$p\",\"version\":\"-\",\"trace\":\"$n\",\"error\":\"failed or timed out (${TIMEOUT} s)\"}" >>"$out"
        fi
        rm -f "$out.err"
    done
done

if [ -n "${RESULTS:-}" ]; then
    cp "$out" "$RESULTS"
fi

echo
echo "Traces: $*" | sed "s|$root/||g"
echo "Machine: $(nproc) cores, $(uname -m), node $(node --version); kith: $KITH --runs $RUNS"
echo
node "$here/peers.mjs" --table <"$out"
