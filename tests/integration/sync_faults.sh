#!/usr/bin/env bash
# Sync through a faulty network (issue 4): a hub and three devices on
# 127.0.0.1, set up as in sync_three.sh, but every device reaches the hub
# through tests/tools/faultproxy, a TCP proxy that cuts, stalls and
# truncates connections at seeded random points (the hub's TLS certificate
# is still pinned end to end: the proxy only moves bytes). The devices edit
# and sync over and over while the faults are on: a sync may fail, but only
# cleanly (exit 1 and a message, never a crash or a hang), and some syncs
# are killed with SIGKILL mid-run. Then the proxy passes everything and a
# final round converges: byte-identical folders, every edit present,
# `kith check` passes everywhere, and every change that `kith status`
# reported during the faults is in every device's log.
#
# KITH names the kith binary; faultproxy is built next to it. SEED picks
# the faults (default 7); KEEP=1 keeps the temporary folder.
set -u
: "${KITH:?KITH must name the kith binary}"
PROXY=$(dirname "$KITH")/faultproxy
[ -x "$PROXY" ] || { echo "FAIL: no faultproxy next to $KITH (build the faultproxy target)"; exit 1; }
SEED=${SEED:-7}
T=$(mktemp -d /tmp/kith-sync-faults-XXXXXX)
HUBPID=
PXPID=
cleanup() {
    [ -n "$PXPID" ] && kill "$PXPID" 2>/dev/null
    [ -n "$HUBPID" ] && kill "$HUBPID" 2>/dev/null
    wait 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    [ -f "$T/hub.log" ] && tail -5 "$T/hub.log"
    exit 1
}
wait_line() { # FILE PATTERN SECONDS
    for _ in $(seq $(($3 * 20))); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
# k DIR ARGS...: kith in a device's folder, never allowed to hang the test.
k() {
    local d=$1
    shift
    timeout -s KILL 30 "$KITH" -C "$T/$d" "$@"
}

"$KITH" hub --listen 127.0.0.1:0 --data "$T/hubdata" >"$T/hub.out" 2>>"$T/hub.log" &
HUBPID=$!
wait_line "$T/hub.out" '^hub: ' 10 || fail "hub did not start"
read -r _ URL _ FP <"$T/hub.out"
HUBPORT=${URL##*:}
"$PROXY" "$HUBPORT" --seed "$SEED" --verbose >"$T/proxy.out" 2>"$T/proxy.log" &
PXPID=$!
wait_line "$T/proxy.out" '^faultproxy: ' 10 || fail "faultproxy did not start"
read -r _ PXPORT <"$T/proxy.out"
PURL="wss://127.0.0.1:$PXPORT"

# Setup through the proxy while it passes everything.
"$KITH" init "$T/ann" --name ann >/dev/null || fail init
printf 'title\n\nintro by ann\n' >"$T/ann/doc.md"
k ann status >/dev/null || fail "status ann"
k ann remote add "$PURL" --fingerprint "$FP" >/dev/null || fail "remote add"
L1=$(k ann invite --role writer) || fail invite
L2=$(k ann invite --role writer) || fail invite
L1=$(grep -o 'kith://join/[A-Za-z0-9_-]*' <<<"$L1" | head -n1)
L2=$(grep -o 'kith://join/[A-Za-z0-9_-]*' <<<"$L2" | head -n1)
(cd "$T" && timeout -s KILL 30 "$KITH" join "$L1" ben --name ben >/dev/null) || fail "join ben"
(cd "$T" && timeout -s KILL 30 "$KITH" join "$L2" cat --name cat >/dev/null) || fail "join cat"
cmp -s "$T/ann/doc.md" "$T/cat/doc.md" || fail "join did not bring the files"

# record DEV: kith status, keeping the id of the change it reports.
record() {
    local out
    out=$(k "$1" status --json) || fail "status $1: $out"
    grep -o '"change": "[0-9a-f]*"' <<<"$out" | cut -d'"' -f4 >>"$T/changes"
}
# fsync_ DEV: one sync through the faults; exit 0 or 1 with a message only.
failed=0
fsync_() {
    local rc
    k "$1" sync --timeout 3 >"$T/sync.out" 2>"$T/sync.err"
    rc=$?
    case $rc in
    0) ;;
    1)
        failed=$((failed + 1))
        grep -q "kith: error: sync: ." "$T/sync.err" || fail "$1: sync failed without a message: $(cat "$T/sync.err")"
        ;;
    *) fail "$1: sync exited $rc (crash or hang): $(cat "$T/sync.out" "$T/sync.err")" ;;
    esac
}

# kill_sync DEV DELAY: start a sync, SIGKILL it DELAY seconds later.
killed=0
kill_sync() {
    "$KITH" -C "$T/$1" sync --timeout 5 >/dev/null 2>&1 &
    local spid=$!
    sleep "$2"
    kill -KILL "$spid" 2>/dev/null && killed=$((killed + 1))
    wait "$spid" 2>/dev/null
}

kill -USR1 "$PXPID"
for round in 1 2 3 4; do
    for d in ann ben cat; do
        printf '%s line %d\n' "$d" "$round" >>"$T/$d/doc.md"
        printf '%s own %d\n' "$d" "$round" >>"$T/$d/$d.md"
        record "$d"
        fsync_ "$d"
    done
    # Kill one sync mid-run: at a different moment each round.
    d=$(sed -n "$((round % 3 + 1))p" <<<$'ann\nben\ncat')
    printf '%s killed %d\n' "$d" "$round" >>"$T/$d/doc.md"
    record "$d"
    kill_sync "$d" "$(sed -n "${round}p" <<<$'0.03\n0.12\n0.25\n0.45')"
done
# A sync takes well over 20 ms (store, scan, TLS); make sure one was killed.
for _ in 1 2 3 4 5; do
    [ "$killed" -ge 1 ] && break
    kill_sync ben 0.02
done
[ "$killed" -ge 1 ] || fail "no sync was killed mid-run"

# The network heals: the final round must converge.
kill -USR2 "$PXPID"
sleep 0.2
converged=0
for attempt in 1 2 3 4 5 6; do
    for d in ann ben cat; do
        k "$d" sync --timeout 15 >/dev/null 2>"$T/final.err" ||
            echo "note: final sync $d attempt $attempt: $(cat "$T/final.err")"
    done
    if diff -r -x .kith "$T/ann" "$T/ben" >/dev/null && diff -r -x .kith "$T/ann" "$T/cat" >/dev/null; then
        # one more pass, so each device has pulled what the last one pushed
        for d in ann ben cat; do k "$d" sync --timeout 15 >/dev/null 2>&1; done
        if diff -r -x .kith "$T/ann" "$T/ben" >/dev/null && diff -r -x .kith "$T/ann" "$T/cat" >/dev/null; then
            converged=1
            break
        fi
    fi
    sleep 0.5
done
[ "$converged" = 1 ] || fail "no convergence: $(diff -r -x .kith "$T/ann" "$T/ben"; diff -r -x .kith "$T/ann" "$T/cat")"

for d in ann ben cat; do
    for r in 1 2 3 4; do
        grep -qx "$d line $r" "$T/ann/doc.md" || fail "lost edit '$d line $r'"
        grep -qx "$d own $r" "$T/ann/$d.md" || fail "lost edit '$d own $r'"
    done
done
for r in 1 2 3 4; do
    d=$(sed -n "$((r % 3 + 1))p" <<<$'ann\nben\ncat')
    grep -qx "$d killed $r" "$T/ann/doc.md" || fail "lost edit '$d killed $r'"
done
for d in ann ben cat; do
    k "$d" check >"$T/check.out" 2>&1 || fail "kith check on $d: $(cat "$T/check.out")"
    k "$d" log --json >"$T/log.$d" || fail "log $d"
    while read -r id; do
        grep -q "\"id\": \"$id\"" "$T/log.$d" || fail "change $id is not in $d's log"
    done <"$T/changes"
done
n=$(sort -u "$T/changes" | grep -c .)
[ "$n" -ge 16 ] || fail "only $n changes were recorded"
grep -q ' cut at\| stall at\| truncate at' "$T/proxy.log" || fail "the proxy injected no faults"
echo "sync_faults: ok (seed $SEED, $failed syncs failed under faults, $killed killed, $n changes, faults: $(grep -c ' cut at' "$T/proxy.log") cut $(grep -c ' stall at' "$T/proxy.log") stall $(grep -c ' truncate at' "$T/proxy.log") truncate)"
