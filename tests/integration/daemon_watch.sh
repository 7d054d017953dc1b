#!/bin/bash
# `kith daemon` on one device, no hub: the watcher records saved edits
# within a second (new files, files in new nested folders, renames and
# deletions), kith's own temporary files and .kith/ are not recorded, a
# second daemon on the workspace is refused, `kith daemon stop` stops it,
# --detach runs it in the background with a pid file, edits made while no
# daemon ran are recorded at start, and a daemon killed with SIGKILL in the
# middle of recording leaves a store that `kith check` passes and a pid
# file that does not block the next start.
set -euo pipefail
: "${KITH:?KITH must name the kith binary}"
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# wait_for SECONDS COMMAND...: polls every 20 ms until COMMAND succeeds.
wait_for() {
    local n=$(($1 * 50))
    shift
    for _ in $(seq "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.02
    done
    return 1
}
cat_is() { [ "$("$KITH" -C "$ws" cat "$1" 2>/dev/null)" = "$2" ]; }

ws=$tmp/ws
"$KITH" init "$ws" --name ann >/dev/null
echo "before the daemon" >"$ws/offline.md"

# foreground daemon; its log on stderr
"$KITH" -C "$ws" daemon --no-lan 2>"$tmp/log" &
dpid=$!
pids+=("$dpid")
wait_for 5 grep -q "daemon started" "$tmp/log" && ok || bad "no start line: $(cat "$tmp/log")"
wait_for 2 cat_is offline.md "before the daemon" && ok || bad "edit made before start not recorded"

# a new file is recorded within a second
echo "hello" >"$ws/a.md"
wait_for 1 cat_is a.md hello && ok || bad "a.md not recorded within 1 s"
# an edit of it, by an editor's write-to-temp-and-rename
printf 'hello\nworld\n' >"$ws/.a.md.swp.new" && mv "$ws/.a.md.swp.new" "$ws/a.md"
wait_for 1 cat_is a.md "$(printf 'hello\nworld')" && ok || bad "rename-over edit not recorded"
# a file in folders made after the start
mkdir -p "$ws/n1/n2/n3"
echo deep >"$ws/n1/n2/n3/deep.md"
wait_for 1 cat_is n1/n2/n3/deep.md deep && ok || bad "file in new nested folders not recorded"
# then a second file in the deepest one: it must be watched by now
sleep 0.1
echo deeper >"$ws/n1/n2/n3/deeper.md"
wait_for 1 cat_is n1/n2/n3/deeper.md deeper && ok || bad "new folder not watched"
# a folder moved in from outside, with content
mkdir -p "$tmp/outside/in"
echo moved >"$tmp/outside/in/m.md"
mv "$tmp/outside" "$ws/outside"
wait_for 1 cat_is outside/in/m.md moved && ok || bad "moved-in folder not recorded"
echo later >"$ws/outside/in/later.md"
wait_for 1 cat_is outside/in/later.md later && ok || bad "moved-in folder not watched"
# rename and delete
mv "$ws/a.md" "$ws/b.md"
wait_for 1 cat_is b.md "$(printf 'hello\nworld')" && ok || bad "rename not recorded"
rm "$ws/b.md"
unlisted() { ! "$KITH" -C "$ws" ls | grep -q " $1\$"; }
wait_for 1 unlisted b.md && ok || bad "deletion not recorded"
# kith's own temporary files and .kith/ do not make changes
n0=$("$KITH" -C "$ws" log | wc -l)
echo tmp >"$ws/.c.md.kith-tmpXYZ"
touch "$ws/.kith/scratch"
sleep 0.3
n1=$("$KITH" -C "$ws" log | wc -l)
[ "$n0" = "$n1" ] && ok || bad "kith temp file or .kith/ recorded ($n0 -> $n1 changes)"
rm -f "$ws/.c.md.kith-tmpXYZ" "$ws/.kith/scratch"
# one log line per recorded change
grep -q "recorded .*: 1 file (n1/n2/n3/deep.md)" "$tmp/log" && ok || bad "no log line per change"

# a second daemon is refused, naming the first
st=0
"$KITH" -C "$ws" daemon --no-lan 2>"$tmp/e2" || st=$?
[ "$st" -ne 0 ] && grep -q "already runs on this workspace (pid $dpid)" "$tmp/e2" && ok ||
    bad "second daemon not refused (status $st): $(cat "$tmp/e2")"
"$KITH" -C "$ws" daemon status | grep -q "pid $dpid" && ok || bad "daemon status"

# stop: SIGTERM, waits, the process is gone, exit 0, the pid file removed
"$KITH" -C "$ws" daemon stop >"$tmp/stop" && ok || bad "daemon stop failed"
grep -q "stopped" "$tmp/stop" && ok || bad "stop said: $(cat "$tmp/stop")"
st=0
wait "$dpid" || st=$?
[ "$st" -eq 0 ] && ok || bad "daemon exited with $st after SIGTERM"
[ ! -e "$ws/.kith/daemon.pid" ] && ok || bad "pid file left after a clean stop"
grep -q "daemon stopped" "$tmp/log" && ok || bad "no stop line"
st=0
"$KITH" -C "$ws" daemon stop 2>/dev/null || st=$?
[ "$st" -ne 0 ] && ok || bad "stop with no daemon succeeded"
st=0
"$KITH" -C "$ws" daemon status >/dev/null || st=$?
[ "$st" -eq 3 ] && ok || bad "status with no daemon: $st"

# SIGINT stops it too
"$KITH" -C "$ws" daemon --no-lan 2>"$tmp/log2" &
dpid=$!
pids+=("$dpid")
wait_for 5 grep -q "daemon started" "$tmp/log2"
kill -INT "$dpid"
st=0
wait "$dpid" || st=$?
[ "$st" -eq 0 ] && grep -q "stopping (SIGINT)" "$tmp/log2" && ok || bad "SIGINT (status $st)"

# --detach: returns once it watches; the first edit after it is recorded
"$KITH" -C "$ws" daemon --detach --no-lan >"$tmp/det" && ok || bad "--detach failed"
grep -q "daemon started (pid [0-9]*); log: .*daemon.log" "$tmp/det" && ok || bad "detach said: $(cat "$tmp/det")"
dpid=$(cat "$ws/.kith/daemon.pid")
pids+=("$dpid")
echo "detached" >"$ws/d.md"
wait_for 1 cat_is d.md detached && ok || bad "edit not recorded by the detached daemon"
grep -q "recorded .*(d.md)" "$ws/.kith/daemon.log" && ok || bad "detached daemon's log"
st=0
"$KITH" -C "$ws" daemon --detach --no-lan 2>/dev/null || st=$?
[ "$st" -ne 0 ] && ok || bad "second --detach not refused"

# SIGKILL while recording a stream of edits: the store checks, the stale
# pid file does not block a new daemon, and it records what was missed
for i in $(seq 200); do echo "line $i" >>"$ws/stream.md"; done &
writer=$!
sleep 0.05
kill -9 "$dpid"
wait "$writer" || true
gone() { ! kill -0 "$1" 2>/dev/null; }
wait_for 5 gone "$dpid" || bad "SIGKILL did not end the daemon"
"$KITH" -C "$ws" check >"$tmp/check" 2>&1 && ok || bad "check after SIGKILL: $(cat "$tmp/check")"
[ -e "$ws/.kith/daemon.pid" ] && ok || bad "expected a stale pid file after SIGKILL"
"$KITH" -C "$ws" daemon --detach --no-lan >/dev/null && ok || bad "start after SIGKILL refused"
pids+=("$(cat "$ws/.kith/daemon.pid")")
wait_for 2 cat_is stream.md "$(seq 200 | sed 's/^/line /')" && ok || bad "stream.md not complete"
"$KITH" -C "$ws" daemon stop >/dev/null && ok || bad "final stop"
"$KITH" -C "$ws" check >/dev/null 2>&1 && ok || bad "final check"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
