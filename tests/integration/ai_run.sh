#!/usr/bin/env bash
# `kith ai` end to end with the real binary: the bundled model found next to
# the executable writes the golden continuation at temperature 0; --json,
# info and bench answer; bad input exits 1 with "kith: error:".
set -euo pipefail
KITH=${KITH:?set KITH to the kith binary}
SRC=${KITH_SRC:?set KITH_SRC to the repository}
fail() { echo "FAIL: $*" >&2; exit 1; }
unset KITH_MODEL
export HOME=$(mktemp -d)   # no user models folder: the bundled model is used
trap 'rm -rf "$HOME"' EXIT

want="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.
Lily"
got=$("$KITH" ai run --temp 0 -n 60 --threads 2 "Once upon a time")
[ "$got" = "$want" ] || fail "golden text differs: $got"

got=$("$KITH" ai run --model "$SRC/models/stories260K-q8_0.gguf" --temp 0 -n 60 "Once upon a time")
[ "$got" = "$want" ] || fail "q8_0 golden text differs: $got"

"$KITH" ai run --json --temp 0 -n 8 "Once upon a time" | grep -q '"n_gen":8' || fail "--json"
"$KITH" ai run --temp 0.8 --seed 3 -n 20 --stop "." "Once upon a time" >/dev/null || fail "sampling"
"$KITH" ai info | grep -q "architecture:  llama" || fail "info"
"$KITH" ai info --json "$SRC/models/stories260K-q4_0.gguf" | grep -q '"type":"Q4_0"' || fail "info --json"
"$KITH" ai bench --json -p 16 -n 8 --runs 1 | grep -q '"tg_tps"' || fail "bench"
"$KITH" ai --help | grep -q "run PROMPT" || fail "--help"

set +e
err=$("$KITH" ai run --model /nonexistent.gguf hi 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "missing model: exit $rc"
case "$err" in "kith: error: "*) ;; *) fail "missing model message: $err" ;; esac
bad=$(mktemp); echo "not a gguf" >"$bad"
set +e
err=$("$KITH" ai run --model "$bad" hi 2>&1); rc=$?
set -e
rm -f "$bad"
[ $rc -eq 1 ] || fail "bad file: exit $rc"
echo "ok ai_run"
