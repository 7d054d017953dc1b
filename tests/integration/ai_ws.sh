#!/usr/bin/env bash
# `kith ai draft|summarize|catchup|ask|review` on a real workspace with the
# bundled model: what the model writes is recorded via "ai:stories260K-f32"
# (blame, log), a draft without --apply is a suggestion anchored where it was
# asked for, catch-up lists the right files and authors, ask cites the file
# with the question's rare word first, review records a comment per changed
# range, Ctrl-C during a generation records nothing, bad input exits 1 with
# "kith: error:".
# The prose is the toy model's children's stories: only the plumbing is checked.
set -euo pipefail
KITH=${KITH:?set KITH to the kith binary}
fail() { echo "FAIL: $*" >&2; exit 1; }
unset KITH_MODEL
T=$(mktemp -d)
export HOME=$T/home   # no user models folder: the bundled model is used
mkdir -p "$HOME" "$T/ws"
trap 'rm -rf "$T"' EXIT
cd "$T/ws"
VIA=ai:stories260K-f32
G=(--temp 0 -n 24)

KITH_USER=alice "$KITH" init --name alice >/dev/null
printf 'Once upon a time there was a cat.\nThe cat liked milk.\n' >story.md
printf 'The zeppelin flew over the town.\nIt was red.\n' >zep.md
printf 'Lunch is at noon.\n' >plan.md
"$KITH" status >/dev/null
base=$("$KITH" log --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

# draft --apply: inserted at line 2, blamed and logged via the model
"$KITH" ai draft story.md "continue the story" --at 2 --apply "${G[@]}" 2>/dev/null
[ "$(sed -n 1p story.md)" = "Once upon a time there was a cat." ] || fail "draft: line 1 moved"
[ "$(tail -n 1 story.md)" = "The cat liked milk." ] || fail "draft: last line moved"
[ "$(wc -l <story.md)" -ge 3 ] || fail "draft: nothing inserted"
"$KITH" blame --json story.md | python3 -c '
import json,sys
b = json.load(sys.stdin)
assert b[0]["via"] is None and b[-1]["via"] is None, b
assert all(l["via"] == "'$VIA'" for l in b[1:-1]), b' || fail "draft: blame via"
"$KITH" log --json | python3 -c '
import json,sys
c = json.load(sys.stdin)[0]
assert c["via"] == "'$VIA'" and c["paths"] == ["story.md"], c' || fail "draft: log via"

# --after
"$KITH" ai draft zep.md "more" --after "town." --apply "${G[@]}" 2>/dev/null
head -n 1 zep.md | grep -q '^The zeppelin flew over the town\. .' || fail "draft --after"

# without --apply a draft is a suggestion: the file stays, the suggestion is
# listed with its author, model and anchor, and accepting it inserts it
n=$("$KITH" log --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
cp plan.md "$T/plan.before"
out=$("$KITH" ai draft plan.md "x" "${G[@]}" 2>/dev/null | tail -n 1)
case "$out" in "suggestion "????????" on plan.md line 2: kith accept "????????" to apply it") ;;
    *) fail "draft suggestion line: $out" ;; esac
sid=${out#suggestion }; sid=${sid%% *}
cmp -s plan.md "$T/plan.before" || fail "a suggestion changed the file"
n2=$("$KITH" log --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n2" = $((n + 1)) ] || fail "a suggestion is one change: $n -> $n2"
"$KITH" suggestions --json | python3 -c '
import json,sys
s = [x for x in json.load(sys.stdin) if x["id"].startswith("'$sid'")]
assert len(s) == 1, s
s = s[0]
assert s["path"] == "plan.md" and s["author"] == "alice" and s["status"] == "open", s
assert s["via"] == "'$VIA'" and s["model"] == "stories260K-f32", s
assert s["anchor"] == "\n" and s["len"] == 1 and s["line"] == 2 and s["text"].endswith("\n"), s' ||
    fail "draft suggestion listing"
# --at LINE anchors to the newline before it, --after to the text
out=$("$KITH" ai draft story.md "x" --at 2 "${G[@]}" 2>/dev/null | tail -n 1)
case "$out" in "suggestion "*" on story.md line 2: "*) ;; *) fail "draft --at suggestion: $out" ;; esac
sat=${out#suggestion }; sat=${sat%% *}
out=$("$KITH" ai draft story.md "x" --after "a cat" "${G[@]}" 2>/dev/null | tail -n 1)
case "$out" in "suggestion "*" on story.md line 1: "*) ;; *) fail "draft --after suggestion: $out" ;; esac
saf=${out#suggestion }; saf=${saf%% *}
"$KITH" suggestions --json | python3 -c '
import json,sys
s = {x["id"][:8]: x for x in json.load(sys.stdin)}
a, b = s["'$sat'"], s["'$saf'"]
assert a["anchor"] == "\n" and a["len"] == 1 and a["line"] == 2, a
assert b["anchor"] == "a cat" and b["len"] == 5 and b["line"] == 1, b' || fail "draft anchors"
"$KITH" accept "$sid" >/dev/null
[ "$(head -n 1 plan.md)" = "Lunch is at noon." ] && [ "$(wc -l <plan.md)" -ge 2 ] ||
    fail "accept: $(cat plan.md)"
"$KITH" blame --json plan.md | python3 -c '
import json,sys
b = json.load(sys.stdin)
assert b[0]["via"] is None and all(l["via"] == "'$VIA'" for l in b[1:]), b' ||
    fail "accepted suggestion: blame via"
"$KITH" reject "$sat" >/dev/null
"$KITH" reject "$saf" >/dev/null
[ "$("$KITH" suggestions --json)" = "[]" ] || fail "suggestions left open"

# summarize: printed; --into a new file, then into an existing one
out=$("$KITH" ai summarize story.md zep.md "${G[@]}")
[ -n "$out" ] || fail "summarize printed nothing"
"$KITH" ai summarize story.md zep.md --into sum.md "${G[@]}" 2>/dev/null
[ -s sum.md ] || fail "summarize --into: no file"
"$KITH" blame --json sum.md | python3 -c '
import json,sys
b = json.load(sys.stdin)
assert b and all(l["via"] == "'$VIA'" for l in b), b' || fail "summarize --into: blame via"
"$KITH" ai summarize zep.md --into plan.md "${G[@]}" 2>/dev/null
[ "$(head -n 1 plan.md)" = "Lunch is at noon." ] || fail "summarize --into existing: text lost"
"$KITH" log --json | python3 -c '
import json,sys
c = json.load(sys.stdin)[0]
assert c["via"] == "'$VIA'" and c["paths"] == ["plan.md"], c' || fail "summarize: log via"

# catchup since the base change: every file, alice directly and via the model
echo "The cat slept." >>story.md
"$KITH" status >/dev/null
out=$("$KITH" ai catchup --since "$base" "${G[@]}")
echo "$out" | grep -q "^7 changes since ${base:0:12}" || fail "catchup count: $out"
echo "$out" | grep -q "^  story.md  +[0-9]* -0  2 changes by alice, alice via $VIA$" ||
    fail "catchup story.md: $out"
echo "$out" | grep -q "^  sum.md  +[0-9]* -0  2 changes by alice, alice via $VIA$" ||
    fail "catchup sum.md: $out"
echo "$out" | grep -q "^  plan.md  +[0-9]* -0  2 changes by alice via $VIA$" || fail "catchup plan.md: $out"
echo "$out" | grep -q "^  note " && fail "catchup lists notes as files: $out"
echo "$out" | grep -q "^Summary:" || fail "catchup summary: $out"
out=$("$KITH" ai catchup -n 0)
echo "$out" | grep -q "since 24 hours ago" || fail "catchup default: $out"
echo "$out" | grep -q "^  zep.md  " || fail "catchup default zep.md: $out"

# ask: the file with the rare word is cited first; the index is refreshed
out=$("$KITH" ai ask "what is a zeppelin" "${G[@]}")
echo "$out" | sed -n '/^Sources:/,$p' | sed -n 2p | grep -q '^  zep\.md:1-' || fail "ask: $out"
printf 'A quokka lives here.\n' >>plan.md
"$KITH" status >/dev/null
out=$("$KITH" ai ask "quokka" -n 0)
[ "$out" = "Sources:
  plan.md:1-$(wc -l <plan.md)" ] || fail "ask after an edit: $out"
[ -f .kith/search.db ] || fail "no .kith/search.db"

# review: one comment per changed range, anchored to it, by alice via the model
printf 'a1\na2\na3\na4\na5\n' >rev.md
"$KITH" status >/dev/null
rv=$("$KITH" log --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
printf 'a1\nB2\na3\na5\nb6\nb7\n' >rev.md   # line 2 changed, a4 deleted, 2 lines added
"$KITH" status >/dev/null
out=$("$KITH" ai review rev.md --since "$rv" "${G[@]}" 2>/dev/null)
echo "$out" | grep -q "^comment [0-9a-f]\{8\} on rev.md lines 2-2: ." || fail "review line 2: $out"
echo "$out" | grep -q "^comment [0-9a-f]\{8\} on rev.md before line 4 (deleted text): ." ||
    fail "review deletion: $out"
echo "$out" | grep -q "^comment [0-9a-f]\{8\} on rev.md lines 5-6: ." || fail "review lines 5-6: $out"
[ "$(echo "$out" | wc -l)" = 3 ] || fail "review: $out"
cmp -s rev.md <(printf 'a1\nB2\na3\na5\nb6\nb7\n') || fail "review changed the file"
"$KITH" comments --json | python3 -c '
import json,sys
c = sorted(json.load(sys.stdin), key=lambda x: x["pos"])
assert len(c) == 3, c
for x in c:
    assert x["type"] == "comment" and x["path"] == "rev.md" and x["status"] == "open", x
    assert x["author"] == "alice" and x["via"] == "'$VIA'" and x["text"], x
assert (c[0]["anchor"], c[0]["line"]) == ("B2", 2), c[0]
assert c[1]["anchor"] == "\n" and c[1]["pos"] == 8, c[1]
assert (c[2]["anchor"], c[2]["line"]) == ("b6\nb7", 6), c[2]' || fail "review: comments"
# without --since: the file'"'"'s last change (here all of it: a new file)
printf 'c1\nc2\n' >rev2.md
"$KITH" status >/dev/null
out=$("$KITH" ai review rev2.md "${G[@]}" 2>/dev/null)
echo "$out" | grep -q "^comment [0-9a-f]\{8\} on rev2.md lines 1-2: ." || fail "review new file: $out"

# Ctrl-C while the model writes: exit 130, nothing recorded, files as they
# were. The bundled model writes its tokens in milliseconds; a random-weight
# model of 25M parameters (bench_make_random_gguf, next to kith) is slow
# enough to be caught in the middle.
SLOW=$T/slow.gguf
"$(dirname "$KITH")/bench_make_random_gguf" "$SLOW" --dim 512 --layers 8 --ff 1408 --heads 8 \
    --kv-heads 8 --vocab 32000 >/dev/null || fail "cannot make the slow model"
interrupted() {
    # a background job starts with SIGINT ignored; kith's own handler,
    # installed for the generation, takes the first one sent after it starts
    local pid rc=0
    "$@" >"$T/int.out" 2>"$T/int.err" &
    pid=$!
    for _ in $(seq 120); do
        sleep 0.5
        kill -INT "$pid" 2>/dev/null || break
    done
    wait "$pid" || rc=$?
    [ $rc -eq 130 ] || fail "$* after SIGINT: exit $rc: $(cat "$T/int.err")"
    grep -q "canceled; nothing was recorded" "$T/int.err" || fail "$*: $(cat "$T/int.err")"
}
S=(--model "$SLOW" --temp 0 -n 2000)
n=$("$KITH" log --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
cp story.md "$T/story.before"
cp plan.md "$T/plan.before"
interrupted "$KITH" ai draft story.md "x" --apply "${S[@]}"
interrupted "$KITH" ai summarize zep.md --into plan.md "${S[@]}"
interrupted "$KITH" ai summarize zep.md --into new-summary.md "${S[@]}"
interrupted "$KITH" ai draft story.md "x" "${S[@]}"   # a suggestion
cmp -s story.md "$T/story.before" || fail "Ctrl-C: story.md changed"
cmp -s plan.md "$T/plan.before" || fail "Ctrl-C: plan.md changed"
[ ! -e new-summary.md ] || fail "Ctrl-C: new-summary.md was made"
n2=$("$KITH" log --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = "$n2" ] || fail "Ctrl-C: the log went from $n to $n2 changes"
[ "$("$KITH" suggestions --json)" = "[]" ] || fail "Ctrl-C: a suggestion was recorded"

# ask with a model of 10M parameters or more fuses BM25 with its embeddings:
# the passages' vectors are kept in the index, and the rare word's file is
# still cited (the random model's vectors only reorder the rest)
out=$("$KITH" ai ask "zeppelin" --model "$SLOW" --temp 0 -n 1 2>/dev/null)
echo "$out" | sed -n '/^Sources:/,$p' | grep -q '^  zep\.md:1-' || fail "ask with embeddings: $out"
python3 -c '
import sqlite3
n = sqlite3.connect(".kith/search.db").execute("SELECT count(*) FROM vecs").fetchone()[0]
assert n > 0, n' || fail "ask with embeddings: no vectors kept"

# bad input
expect_err() {
    local got rc
    set +e
    got=$("$@" 2>&1 >/dev/null); rc=$?
    set -e
    [ $rc -eq 1 ] || fail "$* exited $rc"
    case "$got" in "kith: error: "*) ;; *) fail "$*: message: $got" ;; esac
}
expect_err "$KITH" ai draft missing.md "x" --apply
expect_err "$KITH" ai draft /etc/hostname "x" --apply
expect_err "$KITH" ai draft ../x.md "x"
expect_err "$KITH" ai draft story.md "x" --at 999 --apply
expect_err "$KITH" ai draft story.md "x" --after "no such text" --apply
expect_err "$KITH" ai summarize missing.md
expect_err "$KITH" ai summarize story.md --into /tmp/outside.md
expect_err "$KITH" ai catchup --since nonsense
expect_err "$KITH" ai review missing.md
expect_err "$KITH" ai review story.md --since nonsense
expect_err "$KITH" ai ask
cd "$T"
expect_err "$KITH" ai ask "zeppelin"
expect_err "$KITH" ai catchup
echo "ok ai_ws"
