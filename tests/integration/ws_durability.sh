#!/usr/bin/env bash
# Durability and concurrency of the workspace store, with the real binary:
# 1. SIGKILL: a long editing run where `kith status` is killed at random
#    instants; afterwards the store opens, `kith check` passes (SQLite's
#    integrity check and every recorded version reads back), and every
#    change that a killed or finished run reported is in the log.
# 2. Two processes at once: two loops recording while two loops read
#    (log, cat, blame); none fails, nothing is lost, the store checks out.
# Env: KITH (the kith binary). KITH_KILL_ROUNDS (default 60).
set -u
KITH=${KITH:?set KITH to the kith binary}
rounds=${KITH_KILL_ROUNDS:-60}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    echo "FAIL: $*"
    fail=$((fail + 1))
}

w="$tmp/w"
"$KITH" init "$w" --name Killer >/dev/null || exit 1
cd "$w" || exit 1
for i in 1 2 3 4 5; do
    for k in $(seq 1 200); do echo "file $i line $k"; done >"f$i.md"
done
: >"$tmp/reported"
RANDOM=42
t0=${EPOCHREALTIME/./}
"$KITH" status >/dev/null
t1=${EPOCHREALTIME/./}
run_ms=$(((t1 - t0) / 1000))
[ "$run_ms" -gt 400 ] && run_ms=400
for r in $(seq 1 "$rounds"); do
    # Edit: append to one file, rewrite a line of another, sometimes add or
    # delete a file.
    echo "round $r" >>"f$((RANDOM % 5 + 1)).md"
    sed -i "$((RANDOM % 150 + 1))s/.*/rewritten in round $r/" "f$((RANDOM % 5 + 1)).md"
    [ $((r % 7)) -eq 0 ] && echo "new $r" >"n$r.md"
    [ $((r % 11)) -eq 0 ] && rm -f "n$((r - 7)).md"
    : >"$tmp/out.$r"
    "$KITH" status --json >"$tmp/out.$r" 2>/dev/null &
    pid=$!
    # Kill at a random instant within about twice a run's time (measured
    # below), so that some runs finish and some die mid-transaction.
    sleep "$(printf '0.%03d' $((RANDOM % (2 * run_ms + 1))))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    id=$(grep -o '"change": "[0-9a-f]*"' "$tmp/out.$r" | cut -d'"' -f4)
    [ -n "$id" ] && echo "$id" >>"$tmp/reported"
done
"$KITH" status >/dev/null
rc=$?
[ $rc -eq 0 ] && ok || bad "status after kills exited $rc"
if "$KITH" check >"$tmp/check" 2>&1; then ok; else bad "check after kills: $(cat "$tmp/check")"; fi
"$KITH" log --json >"$tmp/log" || bad "log after kills"
missing=0
while read -r id; do
    grep -q "\"id\": \"$id\"" "$tmp/log" || missing=$((missing + 1))
done <"$tmp/reported"
[ $missing -eq 0 ] && ok || bad "$missing reported changes missing from the log"
echo "kill test: $(wc -l <"$tmp/reported") of $rounds runs reported a change before dying"
# The recorded text is the folder's text.
for f in f*.md; do
    "$KITH" cat "$f" >"$tmp/cat" && cmp -s "$tmp/cat" "$f" && ok || bad "$f differs from its record"
done

# Two writers and two readers at once.
writer() {
    for k in $(seq 1 25); do
        echo "writer $1 edit $k" >>"w$1.md"
        "$KITH" status >/dev/null 2>"$tmp/werr.$1"
        local rc=$?
        if [ $rc -ne 0 ]; then
            echo "writer $1: status exited $rc: $(cat "$tmp/werr.$1")" >>"$tmp/conc"
        fi
    done
}
reader() {
    for k in $(seq 1 25); do
        "$KITH" log -n 5 >/dev/null 2>>"$tmp/rerr" || echo "reader: log failed" >>"$tmp/conc"
        "$KITH" cat f1.md >/dev/null 2>>"$tmp/rerr" || echo "reader: cat failed" >>"$tmp/conc"
    done
}
: >"$tmp/conc"
writer 1 & writer 2 & reader & reader &
wait
if [ -s "$tmp/conc" ]; then bad "concurrent runs: $(head -5 "$tmp/conc") $(head -3 "$tmp/rerr")"; else ok; fi
"$KITH" status >/dev/null
for f in w1.md w2.md; do
    "$KITH" cat "$f" >"$tmp/cat" && cmp -s "$tmp/cat" "$f" && ok || bad "$f lost edits"
done
if "$KITH" check >"$tmp/check" 2>&1; then ok; else bad "check after concurrency: $(cat "$tmp/check")"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
