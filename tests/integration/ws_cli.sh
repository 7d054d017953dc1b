#!/usr/bin/env bash
# Integration test of the workspace verbs on the real binary, in temporary
# folders: init (and its refusal inside a workspace), status recording
# edits, additions, renames (by inode and by content), deletions, binary
# files, ignore rules; log/ls/blame/cat/diff with --json; restore of old
# content and of deleted files; version specs; and bad input: paths outside
# the workspace, unknown files and versions, non-UTF-8 text, unreadable files,
# a store from a newer kith, a corrupt store.
# Env: KITH (the kith binary).
set -u
KITH=${KITH:?set KITH to the kith binary}
tmp=$(mktemp -d)
trap 'chmod -R u+rwX "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    echo "FAIL: $*"
    fail=$((fail + 1))
}
# check NAME CMD...: CMD must succeed.
check() {
    local name=$1
    shift
    if "$@" >"$tmp/out" 2>"$tmp/err"; then ok; else bad "$name: $(head -c 400 "$tmp/err")"; fi
}
# expect RC PATTERN NAME CMD...: exit RC and stderr matching PATTERN.
expect() {
    local want=$1 pat=$2 name=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "$name: exit $rc, expected $want ($(head -c 300 "$tmp/err"))"
    elif ! grep -Eq -- "$pat" "$tmp/err"; then
        bad "$name: stderr '$(head -c 300 "$tmp/err")' does not match /$pat/"
    else
        ok
    fi
}
has() { # has NAME PATTERN FILE
    if grep -Eq -- "$2" "$3"; then ok; else bad "$1: /$2/ not in $(head -c 600 "$3")"; fi
}

w="$tmp/w"
check init "$KITH" init "$w" --name Alice
has "init prints root" "$w" "$tmp/out"
check "identity is private" test "$(stat -c %a "$w/.kith/identity")" = 600
mkdir -p "$w/sub"
expect 1 "already inside" "init inside" "$KITH" init "$w/sub"

cd "$w" || exit 1
printf 'alpha\nbeta\ngamma\n' >a.md
printf 'one\n' >sub/b.md
printf 'tmp\n' >skip.log
printf '*.log\nbuild/\n' >.kithignore
mkdir -p build .git
printf 'x\n' >build/out.txt
printf 'x\n' >.git/config
printf 'swap\n' >.a.md.swp
printf 'bak\n' >a.md~
head -c 5000 /dev/urandom >pic.bin
check "first status" "$KITH" status
has "records a.md" "added +a\.md" "$tmp/out"
has "records binary" "pic\.bin +\(binary\)" "$tmp/out"
if grep -Eq "skip\.log|build/|\.git|\.swp|a\.md~" "$tmp/out"; then bad "ignored files recorded"; else ok; fi
check "nothing new" "$KITH" status
has "nothing new" "nothing changed" "$tmp/out"

# An edit, recorded as a character diff.
printf 'alpha\nBETA beta\ngamma\n' >a.md
check "edit" "$KITH" status --json
has "edit json" '"what": "modified"' "$tmp/out"
has "edit counts" '"inserted": 5' "$tmp/out"
has "edit counts" '"deleted": 0' "$tmp/out"
c_edit=$(grep '"change"' "$tmp/out" | cut -d'"' -f4)

# Rename by inode keeps history; rename with edit; rename by content.
mv sub/b.md c.md
check "rename" "$KITH" status
has "rename shown" "renamed +sub/b\.md -> c\.md" "$tmp/out"
check "log follows rename" "$KITH" log c.md --json
if [ "$(grep -c '"id"' "$tmp/out")" -eq 2 ]; then ok; else bad "log c.md: $(cat "$tmp/out")"; fi
cp c.md d.md && rm c.md
check "rename by content" "$KITH" status
has "content rename" "renamed +c\.md -> d\.md" "$tmp/out"

# A new file that reuses a deleted file's inode is no move when its text
# is unrelated.
printf 'completely different words here\n' >d2.md
check "add d2" "$KITH" status
# (mv keeps the inode; the rewrite makes the text unrelated)
mv d2.md e.md && printf 'nothing in common at all, none\n' >e.md
check "unrelated rewrite of a moved file" "$KITH" status
has "unrelated same-inode file is no rename" "added +e\.md" "$tmp/out"
has "and the old one is deleted" "deleted +d2\.md" "$tmp/out"

# Deletion, then restore --deleted.
rm d.md
check "delete" "$KITH" status
has "delete shown" "deleted +d\.md" "$tmp/out"
check "cat deleted" "$KITH" cat d.md
has "cat deleted content" "^one$" "$tmp/out"
check "restore deleted" "$KITH" restore --deleted d.md
check "restored file" grep -qx one d.md
expect 1 "exists" "restore live" "$KITH" restore --deleted d.md

# cat/diff/restore at versions.
check "cat --at" "$KITH" cat a.md --at "${c_edit:0:8}"
has "cat at edit" "BETA beta" "$tmp/out"
first=$("$KITH" log --json | grep '"id"' | tail -1 | cut -d'"' -f4)
check "cat --at first" "$KITH" cat a.md --at "$first"
if [ "$(cat "$tmp/out")" = "$(printf 'alpha\nbeta\ngamma')" ]; then ok; else bad "cat first: $(cat "$tmp/out")"; fi
check "cat --at now" "$KITH" cat a.md --at now
check "cat --at 0m" "$KITH" cat a.md --at 0m
check "cat --at 0 hours ago" "$KITH" cat a.md --at "0 hours ago"
check "cat --at date" "$KITH" cat a.md --at "$(date +%Y-%m-%d)"
printf 'zeta\n' >>a.md
check "diff to folder" "$KITH" diff a.md --no-color
has "diff hunk" '^\+zeta$' "$tmp/out"
has "diff header" '^--- a/a\.md$' "$tmp/out"
check "diff between versions" "$KITH" diff a.md --from "$first" --to "$c_edit"
has "diff versions" '^\+BETA beta$' "$tmp/out"
check "restore --at" "$KITH" restore a.md --at "$first"
if [ "$(cat a.md)" = "$(printf 'alpha\nbeta\ngamma')" ]; then ok; else bad "restore content: $(cat a.md)"; fi
check "log after restore" "$KITH" log -n 2 a.md --json
has "pending edit recorded before restore" '"inserted": 5' "$tmp/out"
check "cat zeta version kept" "$KITH" log --json
n_changes=$(grep -c '"id"' "$tmp/out")
[ "$n_changes" -ge 8 ] && ok || bad "expected >= 8 changes, got $n_changes"

# blame names the change of each line.
printf 'alpha\nbeta\ngamma\nnew line\n' >a.md
check "status before blame" "$KITH" status
last=$("$KITH" log -n 1 --json | grep '"id"' | cut -d'"' -f4)
check "blame" "$KITH" blame a.md --json
has "blame new line" "\"change\": \"$last\"" "$tmp/out"
has "blame old line" "\"change\": \"$first\"" "$tmp/out"
has "blame author" '"author": "Alice"' "$tmp/out"
check "ls" "$KITH" ls --json
has "ls a.md" '"path": "a.md"' "$tmp/out"
has "ls binary" '"binary": true' "$tmp/out"

# Binary versions: edit, restore.
cp pic.bin "$tmp/pic1"
head -c 4000 /dev/urandom >pic.bin
check "binary edit" "$KITH" status
has "binary modified" "modified +pic\.bin" "$tmp/out"
check "restore binary" "$KITH" restore pic.bin --at "$first"
check "binary restored" cmp -s pic.bin "$tmp/pic1"

# status shows what the last sync left (.kith/sync-state.json, written by
# kith-net).
printf '{"version":1,"updated_ms":1795798379939,"online":false,"remotes":[{"url":"wss://127.0.0.1:9","last_sync_ms":0,"pending":2,"last_error":"connection refused"}],"pending":2}\n' >.kith/sync-state.json
check "status with sync state" "$KITH" status
has "sync offline shown" "^sync: offline" "$tmp/out"
has "remote shown" "wss://127\.0\.0\.1:9 +last sync never, 2 changes waiting to be pushed; last error: connection refused" "$tmp/out"
check "status json with sync state" "$KITH" status --json
has "sync in json" '"online": false' "$tmp/out"
rm .kith/sync-state.json

# -C and --help on every verb.
cd "$tmp" || exit 1
check "-C" "$KITH" -C "$w" log -n 1
for v in init status ls log blame cat diff restore; do
    check "$v --help" "$KITH" "$v" --help
    has "$v usage" "^usage: kith $v" "$tmp/out"
done
cd "$w" || exit 1

# Bad input.
expect 1 "outside the workspace" "path outside" "$KITH" cat ../x
expect 1 "not in the workspace" "unknown file" "$KITH" cat nope.md
expect 1 "not a change id" "bad version" "$KITH" cat a.md --at "next tuesday"
expect 1 "no change was recorded" "too early" "$KITH" cat a.md --at 1999-01-01
expect 2 "unexpected" "bad option" "$KITH" cat a.md --bogus
expect 1 "not a kith workspace" "outside any workspace" "$KITH" -C / status
printf 'caf\xe9 latin-1\n' >latin.txt
expect 3 "latin\.txt: not UTF-8" "non-UTF-8 warned" "$KITH" status
check "non-UTF-8 kept as binary" "$KITH" ls --json
has "latin kept" '"path": "latin.txt"' "$tmp/out"
if [ "$(id -u)" -ne 0 ]; then
    printf 'secret\n' >locked.md && "$KITH" status >/dev/null
    chmod 000 locked.md
    printf 'more\n' >>a.md
    expect 3 "locked\.md" "unreadable file" "$KITH" status
    check "unreadable kept" "$KITH" cat locked.md
    chmod 600 locked.md
fi

# A full disk (here: a file size limit) fails clearly and loses nothing.
before=$("$KITH" log --json | grep -c '"id"')
head -c 3000000 /dev/urandom | od -An -tx1 >huge.md
expect 1 "nothing was recorded" "full disk" bash -c "trap '' XFSZ; ulimit -f 400; exec \"$KITH\" status"
check "store fine after full disk" "$KITH" check
after=$("$KITH" log --json | grep -c '"id"')
[ "$before" -eq "$after" ] && ok || bad "full disk: $before changes before, $after after"
check "records once there is room" "$KITH" status
has "huge recorded" "huge\.md" "$tmp/out"
rm huge.md

# A store written by a newer kith is refused; a corrupt one is reported.
cp -r "$w" "$tmp/newer"
sqlite_bump() {
    # user_version is the 4 bytes at offset 60 of the database header.
    printf '\x00\x00\x00\x63' | dd of="$1" bs=1 seek=60 conv=notrunc status=none
}
"$KITH" -C "$tmp/newer" status >/dev/null 2>&1 # checkpoint the WAL
rm -f "$tmp/newer/.kith/store.db-wal" "$tmp/newer/.kith/store.db-shm"
sqlite_bump "$tmp/newer/.kith/store.db"
expect 1 "newer kith" "newer schema" "$KITH" -C "$tmp/newer" log
cp -r "$w" "$tmp/corrupt"
rm -f "$tmp/corrupt/.kith/store.db-wal" "$tmp/corrupt/.kith/store.db-shm"
head -c 2000 /dev/urandom | dd of="$tmp/corrupt/.kith/store.db" bs=1 seek=0 conv=notrunc status=none
expect 1 "corrupt|not a database" "corrupt store" "$KITH" -C "$tmp/corrupt" status
: >"$tmp/corrupt/.kith/store.db"
expect 1 "." "empty store" "$KITH" -C "$tmp/corrupt" log

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
