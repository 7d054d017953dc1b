#!/bin/bash
# Bytes on the wire for one new keystroke (issue 4's target: one round trip,
# under 200 bytes): two devices, A and B, share notes.md (40 lines A wrote)
# through a hub on loopback; a character is typed into the file and saved,
# then `kith sync` pushes that one change. The figure is the PUSH frame
# (8 bytes of frame header, the blob's 4-byte length and the sealed blob,
# read back from the hub's store: hub.db, table blobs); the hub relays the
# same bytes to the other devices as a BLOB frame and answers the pusher
# with a 54-byte PUSH_RESULT. Before the keystrokes, B has saved a file of
# its own (a device's very first change also carries its user's name and
# an absolute time, about 8 bytes more, once). Four keystrokes:
#   1. A types into its own text (the character's CRDT parent is A's own);
#   2. A types the next character right after it;
#   3. B types into A's text for the first time (its parent is another
#      device's operation, whose agent id must travel: 17 bytes more; the
#      path does not, B holds the file);
#   4. B types the next character.
# Usage: bench/sync_keystroke.sh [BUILD_DIR]     (default: build)
# FILE=projects/2026/a-long-name.md bench/sync_keystroke.sh shows that the
# path's length does not count.
set -euo pipefail
build=${1:-build}
file=${FILE:-notes.md}
KITH=$(cd "$build" && pwd)/kith
[ -x "$KITH" ] || { echo "no kith in $build (build it first)"; exit 1; }
command -v python3 >/dev/null || { echo "needs python3 (its sqlite3 module reads hub.db)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kith-keystroke.XXXXXX")
hub=
cleanup() {
    [ -n "$hub" ] && kill "$hub" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$KITH" hub --listen 127.0.0.1:0 --data "$tmp/hub" >"$tmp/hub.out" 2>"$tmp/hub.log" &
hub=$!
for _ in $(seq 250); do
    [ -s "$tmp/hub.out" ] && break
    sleep 0.02
done
read -r _ url _ fp <"$tmp/hub.out"
fp=${fp#SHA256:}

"$KITH" init "$tmp/a" --name ann >/dev/null
mkdir -p "$(dirname "$tmp/a/$file")"
for i in $(seq 40); do
    echo "Line $i of the notes: the quick brown fox jumps over the lazy dog."
done >"$tmp/a/$file"
"$KITH" -C "$tmp/a" status >/dev/null
"$KITH" -C "$tmp/a" remote add "$url" --fingerprint "$fp" >/dev/null
link=$("$KITH" -C "$tmp/a" invite | grep -o 'kith://join/[A-Za-z0-9_-]*' | head -n1)
"$KITH" join "$link" "$tmp/b" --name bob >/dev/null
"$KITH" -C "$tmp/a" sync >/dev/null
echo "Bob's own notes." >"$tmp/b/bob.md"
"$KITH" -C "$tmp/b" sync >/dev/null
"$KITH" -C "$tmp/a" sync >/dev/null

# type DEVICE OFFSET CHAR: inserts CHAR at byte OFFSET of DEVICE's $file
# and saves it the way an editor does (whole file).
type_at() {
    local f="$tmp/$1/$file"
    { head -c "$2" "$f"; printf '%s' "$3"; tail -c +"$(($2 + 1))" "$f"; } >"$f.new"
    cat "$f.new" >"$f"
    rm -f "$f.new"
}
# push DEVICE LABEL: syncs DEVICE and prints the PUSH frame's bytes.
push() {
    local out pushed blob
    out=$("$KITH" -C "$tmp/$1" sync --json)
    pushed=$(printf '%s\n' "$out" | sed -n 's/.*"pushed": *\([0-9]*\).*/\1/p')
    [ "$pushed" = 1 ] || { echo "expected one change pushed: $out"; exit 1; }
    blob=$(python3 -c 'import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(db.execute("SELECT length(data) FROM blobs ORDER BY id DESC LIMIT 1").fetchone()[0])' \
        "$tmp/hub/hub.db")
    printf '%-44s PUSH frame %4d B (sealed blob %d B)\n' "$2" "$((blob + 12))" "$blob"
}

type_at a 1400 x
push a "1. A types into its own text"
type_at a 1401 y
push a "2. A types the next character"
"$KITH" -C "$tmp/b" sync >/dev/null
type_at b 700 z
push b "3. B types into A's text (first time)"
type_at b 701 w
push b "4. B types the next character"
"$KITH" -C "$tmp/a" sync >/dev/null
grep -q "xy" "$tmp/b/$file" && grep -q "zw" "$tmp/a/$file" ||
    { echo "the keystrokes did not reach the other device"; exit 1; }
echo "both devices hold all four keystrokes"
