#!/bin/bash
# Hundreds of agents, many concurrent branches: bench_make_trace builds a
# trace through real replicas syncing at random (incremental merges), and
# `kith bench trace` must rebuild the same final text through the other path
# (edits at past versions, one merge from scratch). Two seeds, .json and .gz.
set -euo pipefail
: "${KITH:?KITH must name the kith binary}"
GEN="$(dirname "$KITH")/bench_make_trace"
[ -x "$GEN" ] || { echo "missing $GEN"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() {
    if "$@" >"$tmp/out" 2>&1; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $*"
        cat "$tmp/out"
    fi
}
for seed in 1 2; do
    "$GEN" "$tmp/many$seed.json" 300 1500 "$seed"
    check "$KITH" bench trace --runs 1 --json "$tmp/many$seed.json"
    grep -q '"kind":"concurrent"' "$tmp/out" || { echo "FAIL: no concurrent row"; fail=$((fail + 1)); }
done
gzip -k "$tmp/many1.json"
check "$KITH" bench trace --runs 1 "$tmp/many1.json.gz"
# The generated text must differ between seeds (the generator is not stuck).
check test "$(head -c 300 "$tmp/many1.json")" != "$(head -c 300 "$tmp/many2.json")"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
