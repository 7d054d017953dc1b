#!/usr/bin/env bash
# Integration test of `kith bench trace` on the real binary: every bundled
# editing trace replays to its endContent, --json carries the documented keys,
# --output writes the final text, and malformed traces (generated here into a
# temporary folder) exit 1 with a message that names the txn and patch.
# Env: KITH (the kith binary), KITH_SRC (the repository root).
set -u

KITH=${KITH:?set KITH to the kith binary}
KITH_SRC=${KITH_SRC:?set KITH_SRC to the repository root}
traces=("$KITH_SRC"/tests/data/traces/*.json.gz)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() {
    echo "FAIL: $*"
    fail=$((fail + 1))
}

# expect_fail NAME PATTERN FILE...: kith exits 1 and stderr matches PATTERN
# (an extended regex).
expect_fail() {
    local name=$1 pat=$2
    shift 2
    "$KITH" bench trace --runs 1 "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -ne 1 ]; then
        bad "$name: exit $rc, expected 1 ($(head -c 300 "$tmp/err"))"
    elif ! grep -Eq -- "$pat" "$tmp/err"; then
        bad "$name: message '$(head -c 300 "$tmp/err")' does not match /$pat/"
    elif ! grep -q '^kith: error: ' "$tmp/err"; then
        bad "$name: message lacks 'kith: error: '"
    else
        ok
    fi
}

# --- every bundled trace replays and matches endContent ----------------------
if "$KITH" bench trace --json --runs 1 "${traces[@]}" >"$tmp/json" 2>"$tmp/err"; then
    ok
else
    bad "bundled traces: exit $? ($(head -c 500 "$tmp/err"))"
fi
n=$(grep -c '^{' "$tmp/json")
[ "$n" -eq "${#traces[@]}" ] && ok || bad "--json printed $n lines for ${#traces[@]} traces"
for k in trace kind patches replay_ms encoded_bytes decode_ms doc_bytes peak_rss_kb; do
    c=$(grep -c "\"$k\":" "$tmp/json")
    [ "$c" -eq "${#traces[@]}" ] && ok || bad "--json: key '$k' in $c of ${#traces[@]} lines"
done
grep -q '"trace":"friendsforever","file":"[^"]*","kind":"concurrent"' "$tmp/json" && ok ||
    bad "--json: friendsforever not reported as concurrent"
grep -q '"trace":"automerge-paper","file":"[^"]*","kind":"sequential","patches":259778,' \
    "$tmp/json" && ok || bad "--json: automerge-paper patches"

# The table: a header and one row per trace.
if "$KITH" bench trace --runs 1 "$KITH_SRC/tests/data/traces/friendsforever_flat.json.gz" \
    >"$tmp/table" 2>"$tmp/err" && grep -q '^trace ' "$tmp/table" &&
    grep -q '^friendsforever_flat ' "$tmp/table"; then
    ok
else
    bad "table output: $(cat "$tmp/table" "$tmp/err" | head -c 500)"
fi

# --- --output, multi-byte text, concurrent example ---------------------------
# Code points, not bytes: the 2-byte, 3-byte and 4-byte characters count 1.
printf '%s' '{"endContent":"h\u00e9llo \u20ac\ud83d\ude00!","txns":[
 {"time":"2024-01-01T00:00:00Z","patches":[[0,0,"hllo"]]},
 {"patches":[[1,0,"\u00e9"],[5,0," \u20ac\ud83d\ude00"]]},
 {"patches":[[8,0,"?"]]},{"patches":[[8,1,"!"]]}]}' >"$tmp/utf8.json"
printf 'h\xc3\xa9llo \xe2\x82\xac\xf0\x9f\x98\x80!' >"$tmp/utf8.expected"
if "$KITH" bench trace --runs 2 --output "$tmp/utf8.out" "$tmp/utf8.json" >/dev/null 2>"$tmp/err" &&
    cmp -s "$tmp/utf8.out" "$tmp/utf8.expected"; then
    ok
else
    bad "--output of a multi-byte trace: $(head -c 300 "$tmp/err")"
fi

# The example of concurrent/FORMAT.md, gzipped as the real files are.
printf '%s' '{"kind":"concurrent","endContent":"yoooo ho ho\n","numAgents":2,"txns":[
 {"parents":[],"numChildren":1,"agent":0,"time":"2023-11-22T04:49:00+00:00","patches":[[0,0,"hi there\n"]]},
 {"parents":[0],"numChildren":1,"agent":0,"time":"2023-11-22T04:50:00+00:00","patches":[[0,8,""],[0,0,"yoooo"]]},
 {"parents":[1],"numChildren":0,"agent":1,"time":"2023-11-22T04:51:00+00:00","patches":[[5,0," ho ho"]]}]}' |
    gzip >"$tmp/conc.json.gz"
printf 'yoooo ho ho\n' >"$tmp/conc.expected"
if "$KITH" bench trace --runs 1 --output "$tmp/conc.out" "$tmp/conc.json.gz" >/dev/null 2>"$tmp/err" &&
    cmp -s "$tmp/conc.out" "$tmp/conc.expected"; then
    ok
else
    bad "concurrent example: $(head -c 300 "$tmp/err")"
fi

# Two concurrent branches merged by an empty last txn (allowed by the format).
printf '%s' '{"kind":"concurrent","endContent":"ab-xy","numAgents":2,"txns":[
 {"parents":[],"agent":0,"patches":[[0,0,"-"]]},
 {"parents":[0],"agent":0,"patches":[[0,0,"ab"]]},
 {"parents":[0],"agent":1,"patches":[[1,0,"xy"]]},
 {"parents":[1,2],"agent":1,"patches":[]}]}' >"$tmp/branches.json"
"$KITH" bench trace --runs 1 "$tmp/branches.json" >/dev/null 2>"$tmp/err" && ok ||
    bad "concurrent branches: $(head -c 300 "$tmp/err")"

# The bundled concurrent trace's text written out equals the linearised one's.
"$KITH" bench trace --runs 1 --output "$tmp/ff.out" \
    "$KITH_SRC/tests/data/traces/friendsforever.json.gz" >/dev/null 2>&1 &&
    "$KITH" bench trace --runs 1 --output "$tmp/fff.out" \
        "$KITH_SRC/tests/data/traces/friendsforever_flat.json.gz" >/dev/null 2>&1 &&
    [ -s "$tmp/ff.out" ] && cmp -s "$tmp/ff.out" "$tmp/fff.out" && ok ||
    bad "--output of friendsforever and friendsforever_flat differ"

# No endContent: replayed unchecked, exit 0, and said so.
printf '%s' '{"txns":[{"patches":[[0,0,"abc"]]},{"patches":[[1,1,""]]}]}' >"$tmp/noend.json"
if "$KITH" bench trace --runs 1 --output "$tmp/noend.out" "$tmp/noend.json" >/dev/null \
    2>"$tmp/err" && grep -q unchecked "$tmp/err" && [ "$(cat "$tmp/noend.out")" = ac ]; then
    ok
else
    bad "trace without endContent: $(head -c 300 "$tmp/err")"
fi

# --- wrong results and bad input ---------------------------------------------
printf '%s' '{"endContent":"abd","txns":[{"patches":[[0,0,"abc"]]}]}' >"$tmp/wrong.json"
expect_fail "endContent mismatch" "wrong.json': final text differs from endContent at byte 2" \
    "$tmp/wrong.json"

head -c 40000 "$KITH_SRC/tests/data/traces/friendsforever_flat.json.gz" >"$tmp/cut.json.gz"
expect_fail "truncated gzip" "cut.json.gz': txn [0-9]+: .*gzip stream cut short" "$tmp/cut.json.gz"

gzip -dc "$KITH_SRC/tests/data/traces/friendsforever_flat.json.gz" | head -c 30000 \
    >"$tmp/cut.json"
expect_fail "truncated JSON" "cut.json': txn [0-9]+: bad JSON" "$tmp/cut.json"

printf '%s' '{"txns":[{"patches":[[0,0,"a"]]},{"patches":[[1,0,"b"]] x}]}' >"$tmp/syntax.json"
expect_fail "bad JSON" "syntax.json': txn 1: bad JSON at line 1 column [0-9]+" "$tmp/syntax.json"

printf '%s' '{"endContent":"ab","txns":[{"patches":[[0,0,"a"]]},{"patches":[[5,0,"b"]]}]}' \
    >"$tmp/range.json"
expect_fail "position out of range" "range.json': txn 1 patch 0: position 5 past end 1" \
    "$tmp/range.json"

printf '%s' '{"txns":[{"patches":[[0,0,"ab"]]},{"patches":[[0,0,"x"],[2,5,""]]}]}' \
    >"$tmp/del.json"
expect_fail "delete out of range" "txn 1 patch 1: delete of 5 at 2 past end 3" "$tmp/del.json"

printf '%s' '{"txns":[{"patches":[[0,0,"a"]]},{"patches":[[1,"x","b"]]}]}' >"$tmp/type.json"
expect_fail "wrong type" "txn 1 patch 0: delete count is a string" "$tmp/type.json"

printf '%s' '{"txns":[{"patches":[[0,0,"a"]]},{"patches":[[1.5,0,"b"]]}]}' >"$tmp/real.json"
expect_fail "real position" "txn 1 patch 0: position is a real number" "$tmp/real.json"

printf '%s' '{"txns":[{"patches":[[0,0,"a"]]},{"patches":[[-1,0,"b"]]}]}' >"$tmp/neg.json"
expect_fail "negative position" "txn 1 patch 0: position is negative" "$tmp/neg.json"

printf '%s' '{"txns":[{"patches":[[0,0,"a"]]},{"patches":[[1,0]]}]}' >"$tmp/short.json"
expect_fail "short patch" "txn 1 patch 0: not an array" "$tmp/short.json"

printf '%s' '{"txns":[{"patches":[[0,0,"a"]]},{"time":"x"}]}' >"$tmp/nopatches.json"
expect_fail "missing patches" "txn 1: patches missing" "$tmp/nopatches.json"

printf '%s' '{"endContent":"ab"}' >"$tmp/notxns.json"
expect_fail "missing txns" "notxns.json': txns missing" "$tmp/notxns.json"

printf '%s' '{"txns":{"a":1}}' >"$tmp/txnsobj.json"
expect_fail "txns not an array" "txns is an object, not an array" "$tmp/txnsobj.json"

printf '{"txns":[{"patches":[[0,0,"a"]]},{"patches":[[1,0,"\xff"]]}]}' >"$tmp/utf8bad.json"
expect_fail "invalid UTF-8" "utf8bad.json': txn 1: bad JSON" "$tmp/utf8bad.json"

printf '%s' '[1,2]' >"$tmp/array.json"
expect_fail "top level array" "top level is not an object" "$tmp/array.json"

: >"$tmp/empty.json"
expect_fail "empty file" "empty.json': bad JSON" "$tmp/empty.json"

printf '%s' '{"kind":"concurrent","numAgents":2,"txns":[{"parents":[],"agent":0,"patches":[[0,0,"a"]]},
 {"parents":[1],"agent":1,"patches":[[1,0,"b"]]}]}' >"$tmp/parent.json"
expect_fail "parent not earlier" "txn 1: parent 1 is not an earlier txn" "$tmp/parent.json"

printf '%s' '{"kind":"concurrent","numAgents":2,"txns":[{"parents":[],"agent":0,"patches":[[0,0,"a"]]},
 {"parents":[0],"agent":2,"patches":[[1,0,"b"]]}]}' >"$tmp/agent.json"
expect_fail "agent out of range" "txn 1: agent 2 not in 0..1" "$tmp/agent.json"

printf '%s' '{"kind":"concurrent","txns":[]}' >"$tmp/noagents.json"
expect_fail "numAgents missing" "numAgents missing" "$tmp/noagents.json"

# Concurrent positions depend on the parents' version: the engine refuses.
printf '%s' '{"kind":"concurrent","numAgents":2,"txns":[{"parents":[],"agent":0,"patches":[[0,0,"ab"]]},
 {"parents":[0],"agent":1,"patches":[[0,0,"x"],[9,0,"y"]]}]}' >"$tmp/crange.json"
expect_fail "concurrent position out of range" "crange.json': txn 1 patch 1: " "$tmp/crange.json"

expect_fail "missing file" "nothere.json': cannot open" "$tmp/nothere.json"

# One bad trace among good ones: the good ones still run, the exit is 1.
"$KITH" bench trace --runs 1 "$tmp/range.json" "$tmp/utf8.json" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q '^utf8 ' "$tmp/out" && ok || bad "bad then good trace: exit $rc"

# --- options -----------------------------------------------------------------
"$KITH" bench trace --help | grep -q 'usage: kith bench trace' && ok || bad "--help"
expect_fail "no trace" "no trace given"
expect_fail "--runs 0" "--runs wants a whole number" --runs 0 "$tmp/utf8.json"
expect_fail "unknown option" "option '--frobnicate' is unknown" --frobnicate "$tmp/utf8.json"
expect_fail "--output with two traces" "--output takes one trace" --output "$tmp/x" \
    "$tmp/utf8.json" "$tmp/noend.json"
"$KITH" bench nonsense >/dev/null 2>&1
[ $? -eq 1 ] && ok || bad "unknown benchmark does not exit 1"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
