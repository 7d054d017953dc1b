#!/bin/bash
# Two devices' daemons and a hub on loopback, as users set them up (kith
# init, kith remote add, kith invite, kith join): an edit saved on A shows
# up in B's folder, a file made on B shows up on A, edits saved on both at
# the same moment (the remote change arriving while B's own save is not
# recorded yet) are all kept and both folders end byte-identical, and an
# edit made while the hub is down arrives once it is back (the daemons
# retry on their own). Afterwards both stores pass `kith check`.
set -euo pipefail
: "${KITH:?KITH must name the kith binary}"
tmp=$(mktemp -d)
hub_pid=
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    [ -n "$hub_pid" ] && kill -9 "$hub_pid" 2>/dev/null || true
    [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
wait_for() {
    local n=$(($1 * 50))
    shift
    for _ in $(seq "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.02
    done
    return 1
}
same() { cmp -s "$1" "$2"; }
has() { grep -qx -- "$2" "$1"; }

# start_hub PORT: the hub on 127.0.0.1:PORT (0: any), data in $tmp/hub.
start_hub() {
    # a fresh file: the shell truncates it in the child, maybe after the
    # wait below has seen the last start's line
    rm -f "$tmp/hub.out"
    "$KITH" hub --listen "127.0.0.1:$1" --data "$tmp/hub" >"$tmp/hub.out" 2>>"$tmp/hub.log" &
    hub_pid=$!
    wait_for 5 test -s "$tmp/hub.out" || return 1
    local line
    line=$(head -n1 "$tmp/hub.out")
    [[ "$line" =~ ^hub:\ (wss://[^ ]+)\ fingerprint\ (SHA256:[0-9a-f]{64})$ ]] || return 1
    hub_url=${BASH_REMATCH[1]}
    hub_fp=${BASH_REMATCH[2]}
}
start_hub 0 || { echo "hub did not start"; cat "$tmp/hub.log"; exit 1; }
hub_port=${hub_url##*:}

A=$tmp/a
B=$tmp/b
"$KITH" init "$A" --name ann >/dev/null
printf 'title\n' >"$A/notes.md"
"$KITH" -C "$A" status >/dev/null
"$KITH" -C "$A" remote add "$hub_url" --fingerprint "$hub_fp" >"$tmp/remote" 2>&1 && ok ||
    bad "remote add: $(cat "$tmp/remote")"
"$KITH" -C "$A" invite >"$tmp/invite" 2>&1 && ok || bad "invite: $(cat "$tmp/invite")"
link=$(grep -o 'kith://join/[A-Za-z0-9_-]*' "$tmp/invite" | head -n1)
"$KITH" join "$link" "$B" --name bob >"$tmp/join" 2>&1 && ok || bad "join: $(cat "$tmp/join")"
same "$A/notes.md" "$B/notes.md" && ok || bad "B's folder after join"

start_daemon() { # DIR LOG
    "$KITH" -C "$1" daemon --no-lan 2>"$2" &
    pids+=($!)
    wait_for 5 grep -q "daemon started" "$2"
}
start_daemon "$A" "$tmp/log.a" && ok || bad "daemon A did not start"
start_daemon "$B" "$tmp/log.b" && ok || bad "daemon B did not start"

# A saves; B's folder has it within 2 s
printf 'title\nfrom ann\n' >"$A/notes.md"
wait_for 2 same "$A/notes.md" "$B/notes.md" && ok || bad "A's edit did not reach B's folder"
# B makes a file; A's folder has it
mkdir -p "$B/specs"
printf 'spec by bob\n' >"$B/specs/s1.md"
wait_for 2 same "$B/specs/s1.md" "$A/specs/s1.md" && ok || bad "B's new file did not reach A"

# Both save the same file at the same moment, ten times: every line stays
# and the folders converge. B's save lands while A's change is on its way,
# so B's daemon must record B's edit before it writes the merge.
for i in $(seq 10); do
    { printf 'ann %d\n' "$i" >>"$A/notes.md"; } &
    w1=$!
    { sed -i "1i bob $i" "$B/notes.md"; } &
    w2=$!
    wait "$w1" "$w2"
    sleep 0.03
done
converged() { same "$A/notes.md" "$B/notes.md"; }
wait_for 5 converged && ok || bad "notes.md did not converge: $(diff "$A/notes.md" "$B/notes.md" | head -5)"
lost=0
for i in $(seq 10); do
    has "$A/notes.md" "ann $i" || lost=$((lost + 1))
    has "$A/notes.md" "bob $i" || lost=$((lost + 1))
done
[ "$lost" -eq 0 ] && ok || bad "$lost of 20 concurrent saves lost: $(cat "$A/notes.md")"
has "$A/notes.md" "from ann" && has "$A/notes.md" "title" && ok || bad "earlier text lost"

# the hub goes away; A keeps editing; the hub comes back on the same port
kill -TERM "$hub_pid"
wait "$hub_pid" || true
hub_pid=
printf 'written offline\n' >"$A/offline.md"
sleep 0.5
start_hub "$hub_port" && ok || bad "hub restart"
wait_for 15 same "$A/offline.md" "$B/offline.md" && ok || bad "offline edit did not arrive after the hub came back"

# logs: one line per event
grep -q "recorded .*(notes.md)" "$tmp/log.a" && ok || bad "A's log has no recorded line"

for d in "$A" "$B"; do
    "$KITH" -C "$d" daemon stop >/dev/null && ok || bad "stop $d"
done
for d in "$A" "$B"; do
    "$KITH" -C "$d" check >"$tmp/check" 2>&1 && ok || bad "check $d: $(cat "$tmp/check")"
done
diff -r -x .kith "$A" "$B" >/dev/null && ok || bad "folders differ at the end"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
