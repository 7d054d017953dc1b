#!/usr/bin/env bash
# A store written with schema 1 (tests/data/store-v1, made by kith 3ccb029)
# is upgraded in place when this kith opens it: the history reads back
# exactly as the old kith printed it, the store passes integrity_check, and
# work goes on (a new edit is recorded and listed). Two processes opening the
# old store at once migrate it once. A migration that cannot write (a
# read-only store) fails with a message and leaves the store as it was.
# Env: KITH (the kith binary), KITH_SRC (the source tree).
set -u
KITH=${KITH:?set KITH to the kith binary}
SRC=${KITH_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
FX=$SRC/tests/data/store-v1
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
    if ! "$@" >"$tmp/out" 2>"$tmp/err"; then
        bad "$name: exit $?: $(head -c 400 "$tmp/err")"
    elif ! cmp -s "$tmp/out" "$want"; then
        bad "$name: output differs: $(diff "$want" "$tmp/out" | head -20)"
    else
        ok
    fi
}
copy_fixture() { # DIR: a fresh copy of the schema-1 workspace
    cp -a "$FX/ws" "$1"
    chmod 700 "$1/.kith"
    chmod 600 "$1/.kith/identity" "$1/.kith/workspace-key" "$1/.kith/config"
}
schema() { sqlite3 "$1/.kith/store.db" "PRAGMA user_version"; }

command -v sqlite3 >/dev/null || {
    echo "store_migrate: sqlite3 (the shell) is needed"
    exit 1
}

# -- the upgrade keeps every listing as the old kith printed it
w=$tmp/ws
copy_fixture "$w"
[ "$(schema "$w")" = 1 ] && ok || bad "fixture: schema $(schema "$w"), expected 1"
same "log --json" "$FX/expect/log.json" "$KITH" -C "$w" log --json
[ "$(schema "$w")" = 2 ] && ok || bad "after the first command: schema $(schema "$w"), expected 2"
[ "$(sqlite3 "$w/.kith/store.db" 'PRAGMA integrity_check')" = ok ] && ok || bad "integrity_check"
same "log PATH --json" "$FX/expect/log-a.json" "$KITH" -C "$w" log notes/a-renamed.md --json
same "blame" "$FX/expect/blame-a.txt" "$KITH" -C "$w" blame notes/a-renamed.md
same "cat --at" "$FX/expect/cat-a-at2.txt" "$KITH" -C "$w" cat notes/a-renamed.md --at f90800b5e3
same "ls" "$FX/expect/ls.txt" "$KITH" -C "$w" ls
"$KITH" -C "$w" diff notes/a-renamed.md --from 34efc0c3c4 >"$tmp/diff" 2>&1
cmp -s "$tmp/diff" "$FX/expect/diff-a.txt" && ok || bad "diff: $(diff "$FX/expect/diff-a.txt" "$tmp/diff" | head)"
# paths: only where they change (the rename) is one stored; the view gives all back
n=$(sqlite3 "$w/.kith/store.db" "SELECT count(*) FROM edit_rows WHERE path IS NULL")
[ "$n" -ge 2 ] && ok || bad "edit_rows: $n rows share their path with the edit before (expected >= 2)"
[ "$(sqlite3 "$w/.kith/store.db" "SELECT count(*) FROM edits WHERE path IS NULL")" = 0 ] && ok ||
    bad "the edits view has rows without a path"

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
[ "$(schema "$w2")" = 2 ] && ok || bad "two processes: schema $(schema "$w2")"

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
