#!/usr/bin/env bash
# Stores written with schema 1 (tests/data/store-v1, made by kith 3ccb029)
# and schema 2 (tests/data/store-v2, made by kith 6f62372) are upgraded in
# place to schema 4 when this kith opens them: the history reads back exactly
# as the old kith printed it, the edits and changes are packed into edit_runs
# and change_runs (edit_rows and the changes table are gone), the store
# passes integrity_check, and work goes
# on (a new edit is recorded and listed). Two processes opening the old store
# at once migrate it once. A migration that cannot write (a read-only store)
# fails with a message and leaves the store as it was.
# Env: KITH (the kith binary), KITH_SRC (the source tree).
set -u
KITH=${KITH:?set KITH to the kith binary}
SRC=${KITH_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
FX=$SRC/tests/data/store-v1
FX2=$SRC/tests/data/store-v2
tmp=$(mktemp -d)
trap 'chmod -R u+rwX "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export TZ=UTC
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    echo "FAIL: $*"
    fail=$((fail + 1))
}
# same NAME EXPECTED-FILE CMD...: CMD succeeds and prints exactly the file.
same() {
    local name=$1 want=$2
    shift 2
    local rc=0
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    if [ "$rc" != 0 ]; then
        bad "$name: exit $rc: $(head -c 400 "$tmp/err")"
    elif ! cmp -s "$tmp/out" "$want"; then
        bad "$name: output differs: $(diff "$want" "$tmp/out" | head -20)"
    else
        ok
    fi
}
copy_fixture() { # DIR [FIXTURE]: a fresh copy of a fixture's workspace (default: schema 1's)
    cp -a "${2:-$FX}/ws" "$1"
    chmod 700 "$1/.kith"
    chmod 600 "$1/.kith/identity" "$1/.kith/workspace-key" "$1/.kith/config"
}
schema() { sqlite3 "$1/.kith/store.db" "PRAGMA user_version"; }
q() { sqlite3 "$1/.kith/store.db" "$2"; } # DIR SQL
# schema4 NAME DIR: the store is schema 4's shape and passes integrity_check
schema4() {
    [ "$(schema "$2")" = 4 ] && ok || bad "$1: schema $(schema "$2"), expected 4"
    [ "$(q "$2" "SELECT count(*) FROM sqlite_master WHERE name IN ('edit_rows', 'edit_rows_change', 'edit_rows_named')")" = 0 ] && ok ||
        bad "$1: edit_rows is still there"
    [ "$(q "$2" "SELECT count(*) FROM sqlite_master WHERE type='view' AND name='edits'")" = 0 ] && ok ||
        bad "$1: the edits view is still there"
    local n
    n=$(q "$2" "SELECT count(*) FROM edit_runs" 2>&1)
    [ "$n" -gt 0 ] 2>/dev/null && ok || bad "$1: edit_runs: $n rows"
    [ "$(q "$2" "SELECT count(*) FROM sqlite_master WHERE name='changes'")" = 0 ] && ok ||
        bad "$1: the changes table is still there"
    n=$(q "$2" "SELECT count(*) FROM change_runs" 2>&1)
    [ "$n" -gt 0 ] 2>/dev/null && ok || bad "$1: change_runs: $n rows"
    [ "$(q "$2" 'PRAGMA integrity_check')" = ok ] && ok || bad "$1: integrity_check"
}

command -v sqlite3 >/dev/null || {
    echo "store_migrate: sqlite3 (the shell) is needed"
    exit 1
}

# -- the upgrade keeps every listing as the old kith printed it
w=$tmp/ws
copy_fixture "$w"
[ "$(schema "$w")" = 1 ] && ok || bad "fixture: schema $(schema "$w"), expected 1"
same "log --json" "$FX/expect/log.json" "$KITH" -C "$w" log --json
schema4 "v1, after the first command" "$w"
same "log PATH --json" "$FX/expect/log-a.json" "$KITH" -C "$w" log notes/a-renamed.md --json
same "blame" "$FX/expect/blame-a.txt" "$KITH" -C "$w" blame notes/a-renamed.md
same "cat --at" "$FX/expect/cat-a-at2.txt" "$KITH" -C "$w" cat notes/a-renamed.md --at f90800b5e3
same "ls" "$FX/expect/ls.txt" "$KITH" -C "$w" ls
"$KITH" -C "$w" diff notes/a-renamed.md --from 34efc0c3c4 >"$tmp/diff" 2>&1
cmp -s "$tmp/diff" "$FX/expect/diff-a.txt" && ok || bad "diff: $(diff "$FX/expect/diff-a.txt" "$tmp/diff" | head)"

# -- work goes on: an edit after the upgrade, a rename and a restore
printf 'ALPHA\nbeta\ngamma\ndelta\n' >"$w/notes/a-renamed.md"
"$KITH" -C "$w" status >/dev/null 2>&1 && ok || bad "status after the upgrade"
mv "$w/notes/a-renamed.md" "$w/a2.md"
"$KITH" -C "$w" status >/dev/null 2>&1 && ok || bad "status (rename) after the upgrade"
printf 'ALPHA\nbeta\ngamma\ndelta\nepsilon\n' >"$w/a2.md"
"$KITH" -C "$w" status >/dev/null 2>&1 && ok || bad "status (edit after rename)"
"$KITH" -C "$w" log --json >"$tmp/log2" 2>&1
for p in '"a2.md"' '"notes/a-renamed.md"' '"notes/c.md"' '"pic.bin"'; do
    grep -q "$p" "$tmp/log2" && ok || bad "log after the upgrade lacks $p"
done
[ "$(grep -c '"id"' "$tmp/log2")" = 9 ] && ok || bad "log after the upgrade: $(grep -c '"id"' "$tmp/log2") changes, expected 9"
"$KITH" -C "$w" log a2.md >"$tmp/loga" 2>&1
[ "$(grep -c . "$tmp/loga")" = 7 ] && ok || bad "log a2.md: $(cat "$tmp/loga")"
head -1 "$tmp/loga" | grep -q ' a2.md$' && ok || bad "log a2.md, newest: $(head -1 "$tmp/loga")"
sed -n 3p "$tmp/loga" | grep -q 'notes/a-renamed.md$' && ok || bad "log a2.md, before the rename: $(sed -n 3p "$tmp/loga")"
"$KITH" -C "$w" restore --deleted notes/b.md >/dev/null 2>&1 && ok || bad "restore --deleted after the upgrade"
[ "$(cat "$w/notes/b.md" 2>/dev/null)" = one ] && ok || bad "restored notes/b.md: $(cat "$w/notes/b.md" 2>&1)"
[ "$(sqlite3 "$w/.kith/store.db" 'PRAGMA integrity_check')" = ok ] && ok || bad "integrity_check after work"

# -- two processes open the old store at once: both succeed, one migrates
w2=$tmp/ws2
copy_fixture "$w2"
"$KITH" -C "$w2" log --json >"$tmp/p1" 2>&1 &
p1=$!
"$KITH" -C "$w2" log --json >"$tmp/p2" 2>&1 &
p2=$!
wait $p1 && wait $p2 && ok || bad "two processes at once: $(cat "$tmp/p1" "$tmp/p2" | head -5)"
cmp -s "$tmp/p1" "$FX/expect/log.json" && cmp -s "$tmp/p2" "$FX/expect/log.json" && ok ||
    bad "two processes at once: a log differs"
[ "$(schema "$w2")" = 4 ] && ok || bad "two processes: schema $(schema "$w2"), expected 4"

# -- schema 2: the same listings read back; the edits are packed into runs
v=$tmp/v2
copy_fixture "$v" "$FX2"
[ "$(schema "$v")" = 2 ] && ok || bad "v2 fixture: schema $(schema "$v"), expected 2"
rows=$(q "$v" "SELECT count(*) FROM edit_rows")
changes=$(q "$v" "SELECT count(*) FROM changes")
same "v2: log --json" "$FX2/expect/log.json" "$KITH" -C "$v" log --json
schema4 "v2, after the first command" "$v"
runs=$(q "$v" "SELECT count(*) FROM edit_runs" 2>&1)
[ "$runs" -lt "$rows" ] 2>/dev/null && ok || bad "v2: edit_runs: $runs rows for $rows edit rows (expected fewer)"
cruns=$(q "$v" "SELECT count(*) FROM change_runs" 2>&1)
[ "$cruns" -lt "$changes" ] 2>/dev/null && ok || bad "v2: change_runs: $cruns rows for $changes changes (expected fewer)"
[ "$(q "$v" "SELECT sum(n) FROM change_runs")" = "$changes" ] && ok || bad "v2: change_runs do not hold $changes changes"
same "v2: log PATH --json" "$FX2/expect/log-journal.json" "$KITH" -C "$v" log journal.md --json
same "v2: blame" "$FX2/expect/blame-journal.txt" "$KITH" -C "$v" blame journal.md
same "v2: cat --at" "$FX2/expect/cat-journal-at3.txt" "$KITH" -C "$v" cat journal.md --at cbf449ac88
same "v2: cat --at before the rename" "$FX2/expect/cat-b-before-rename.txt" \
    "$KITH" -C "$v" cat notes/b-renamed.md --at 482de32c3b
same "v2: ls" "$FX2/expect/ls.txt" "$KITH" -C "$v" ls
"$KITH" -C "$v" diff journal.md --from 96aa8ba73b >"$tmp/diff" 2>&1
cmp -s "$tmp/diff" "$FX2/expect/diff-journal.txt" && ok || bad "v2: diff: $(diff "$FX2/expect/diff-journal.txt" "$tmp/diff" | head)"
# work goes on: an edit is recorded, listed and blamed; the old versions stay
echo 'entry 61 after the upgrade' >>"$v/journal.md"
"$KITH" -C "$v" status >/dev/null 2>&1 && ok || bad "v2: status after the upgrade"
"$KITH" -C "$v" log --json >"$tmp/log2" 2>&1
[ "$(grep -c '"id"' "$tmp/log2")" = 68 ] && ok || bad "v2: log after the upgrade: $(grep -c '"id"' "$tmp/log2") changes, expected 68"
"$KITH" -C "$v" log journal.md >"$tmp/logj" 2>&1
[ "$(grep -c . "$tmp/logj")" = 63 ] && ok || bad "v2: log journal.md: $(grep -c . "$tmp/logj") lines, expected 63"
new=$(head -1 "$tmp/logj" | cut -c1-10)
head -1 "$tmp/logj" | grep -q '+27 -0 *journal.md$' && ok || bad "v2: log journal.md, newest: $(head -1 "$tmp/logj")"
"$KITH" -C "$v" blame journal.md >"$tmp/blame2" 2>&1
head -22 "$tmp/blame2" | cmp -s - "$FX2/expect/blame-journal.txt" && ok || bad "v2: blame after the edit: the old lines differ"
tail -1 "$tmp/blame2" | grep -q "^$new .* 23) entry 61 after the upgrade$" && ok || bad "v2: blame, new line: $(tail -1 "$tmp/blame2")"
same "v2: cat --at after work" "$FX2/expect/cat-journal-at3.txt" "$KITH" -C "$v" cat journal.md --at cbf449ac88
[ "$(q "$v" 'PRAGMA integrity_check')" = ok ] && ok || bad "v2: integrity_check after work"

# -- a store that cannot be written is not half-upgraded
if [ "$(id -u)" != 0 ]; then
    w3=$tmp/ws3
    copy_fixture "$w3"
    chmod a-w "$w3/.kith/store.db" "$w3/.kith"
    if "$KITH" -C "$w3" log >"$tmp/out" 2>&1; then
        bad "read-only old store: log succeeded"
    else
        ok
    fi
    [ "$(schema "$w3")" = 1 ] && ok || bad "read-only old store: schema $(schema "$w3")"
    chmod u+w "$w3/.kith/store.db" "$w3/.kith"
fi

echo "store_migrate: $pass passed, $fail failed"
[ "$fail" = 0 ]
