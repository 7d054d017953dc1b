#!/bin/bash
# Save-to-screen latency of sync-on-connect: the time from a save on device
# A to the file updated in device B's folder, through a hub on loopback,
# with both devices' daemons running (issue 4's target: median < 50 ms).
#
#   bench/daemon_latency.sh [BUILD_DIR] [SAVES]     (default: build, 20)
#
# Each save writes the whole file (as editors do) with a new line at the
# end; the clock starts just before the write and stops when B's file
# holds the same bytes (polled every 0.2 ms). Saves are 300 ms apart, so
# each one is measured on its own, not queued behind the previous one.
# What the figure includes: A's inotify event, the debounce quiet time
# (cli/net/cmd_daemon.c QUIET_MS), A's scan and record, sealing, the push,
# the hub's store and relay, B's open, apply and atomic file write.
set -euo pipefail
build=${1:-build}
saves=${2:-20}
KITH=$(cd "$build" && pwd)/kith
[ -x "$KITH" ] || { echo "no kith in $build (build it first)"; exit 1; }
command -v python3 >/dev/null || { echo "needs python3 for the timing loop"; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
wait_for() {
    for _ in $(seq 250); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.02
    done
    return 1
}

"$KITH" hub --listen 127.0.0.1:0 --data "$tmp/hub" >"$tmp/hub.out" 2>"$tmp/hub.log" &
pids+=($!)
wait_for test -s "$tmp/hub.out"
read -r _ url _ fp <"$tmp/hub.out"

"$KITH" init "$tmp/a" --name ann >/dev/null
printf 'latency\n' >"$tmp/a/lat.md"
"$KITH" -C "$tmp/a" status >/dev/null
"$KITH" -C "$tmp/a" remote add "$url" --fingerprint "$fp" >/dev/null
link=$("$KITH" -C "$tmp/a" invite | grep -o 'kith://join/[A-Za-z0-9_-]*' | head -n1)
"$KITH" join "$link" "$tmp/b" --name bob >/dev/null

for d in a b; do
    "$KITH" -C "$tmp/$d" daemon --no-lan --quiet 2>"$tmp/log.$d" &
    pids+=($!)
done
sleep 1 # both connected and caught up

python3 - "$tmp/a/lat.md" "$tmp/b/lat.md" "$saves" <<'PY'
import os, statistics, sys, time
a, b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def read(p):
    try:
        with open(p, "rb") as f:
            return f.read()
    except OSError:
        return None
text = read(a)
lat = []
for i in range(n):
    text += b"save %d\n" % i
    t0 = time.perf_counter()
    with open(a, "wb") as f:
        f.write(text)
    while read(b) != text:
        if time.perf_counter() - t0 > 5:
            sys.exit("save %d did not reach B within 5 s" % i)
        time.sleep(0.0002)
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.3)
lat.sort()
print("daemon latency, save on A -> file on B via loopback hub, %d saves:" % n)
print("  median %.1f ms   min %.1f   p90 %.1f   max %.1f" %
      (statistics.median(lat), lat[0], lat[int(0.9 * (n - 1))], lat[-1]))
PY
