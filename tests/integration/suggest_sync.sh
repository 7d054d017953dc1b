#!/usr/bin/env bash
# Suggestions anchored in the CRDT, across two devices and a hub on 127.0.0.1
# (issue 6). While the hub is down, ann's on-device model drafts a suggestion
# after a sentence and ann suggests a replacement of a word; meanwhile ben
# inserts and deletes text before the sentence, types right after it, and
# deletes the word. After sync both devices list the same suggestions at the
# same, right line; the replacement is stale on both and cannot be accepted;
# ann accepts the draft, which lands right after its sentence on both
# devices, blamed on ann via the model on both; ben rejects another and the
# rejection syncs back. Bad ids exit non-zero with a message.
set -u
KITH=${KITH:-$(dirname "$0")/../../build/kith}
T=$(mktemp -d /tmp/kith-suggest-XXXXXX)
HUBPID=
cleanup() { [ -n "$HUBPID" ] && kill "$HUBPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
unset KITH_MODEL
export HOME=$T/home # no user models folder: the bundled model
mkdir -p "$HOME"
VIA=ai:stories260K-f32

start_hub() { # [port]
    rm -f "$T/hub.out" # else the wait below may see the last start's line
    "$KITH" hub --listen "127.0.0.1:${1:-0}" --data "$T/hubdata" >"$T/hub.out" 2>>"$T/hub.log" &
    HUBPID=$!
    for _ in $(seq 100); do grep -q '^hub: ' "$T/hub.out" 2>/dev/null && break; sleep 0.05; done
    read -r _ URL _ FP <"$T/hub.out" || fail "hub did not start"
}
stop_hub() { kill "$HUBPID"; wait "$HUBPID" 2>/dev/null; HUBPID=; }
k() { local d=$1; shift; (cd "$T/$d" && "$KITH" "$@"); }
# field of the suggestion whose id starts with $2 in `kith suggestions --all --json` on $1
field() {
    k "$1" suggestions --all --json | python3 -c '
import json, sys
hits = [s for s in json.load(sys.stdin) if s["id"].startswith(sys.argv[1])]
print(hits[0][sys.argv[2]] if len(hits) == 1 else "MISSING")' "$2" "$3"
}

start_hub
PORT=${URL##*:}
mkdir "$T/ann" && (cd "$T/ann" && KITH_USER=ann "$KITH" init . >/dev/null) || fail init
cat >"$T/ann/story.md" <<'EOF'
Title
first line
The cat sat on the mat.
a line to delete
middle line
last line
EOF
k ann status >/dev/null
k ann remote add "$URL" --fingerprint "$FP" >/dev/null || fail "remote add"
L=$(k ann invite --role writer) || fail invite
(cd "$T" && "$KITH" join "$L" ben --name ben >/dev/null) || fail "join ben"
cmp -s "$T/ann/story.md" "$T/ben/story.md" || fail "join did not bring the file"

# Offline: ann's model drafts after the sentence; ann suggests a replacement.
stop_hub
out=$(k ann ai draft story.md "continue" --after "The cat sat on the mat." --temp 0 -n 12 2>/dev/null) ||
    fail "ai draft: $out"
S1=$(printf '%s\n' "$out" | sed -n 's/^suggestion \([0-9a-f]\{8\}\) on story.md.*/\1/p' | tail -n 1)
[ -n "$S1" ] || fail "ai draft printed no suggestion id: $out"
cmp -s "$T/ann/story.md" "$T/ben/story.md" || fail "a suggestion changed the file"
DRAFT=$(field ann "$S1" text)
[ -n "$DRAFT" ] && [ "$DRAFT" != MISSING ] || fail "the draft's text is not listed"
[ "$(field ann "$S1" via)" = "$VIA" ] || fail "draft via: $(field ann "$S1" via)"
[ "$(field ann "$S1" model)" = "${VIA#ai:}" ] || fail "draft model"
[ "$(field ann "$S1" author)" = ann ] || fail "draft author"
[ "$(field ann "$S1" line)" = 3 ] || fail "draft line before sync: $(field ann "$S1" line)"
S2=$(k ann suggest story.md --replace "middle" -m "central" | awk '{print $2}')
S3=$(k ann suggest story.md --at 6 -m "a line from ann" | awk '{print $2}')
[ -n "$S2" ] && [ -n "$S3" ] || fail "kith suggest printed no id"

# Offline too: ben inserts and deletes before the sentence, types right
# after it, and deletes the word the replacement is anchored to.
cat >"$T/ben/story.md" <<'EOF'
Title
new line one from ben
new line two from ben
The cat sat on the mat. Ben typed here!
a line to delete
 line
last line
EOF
sed -i '/^first line$/d' "$T/ben/story.md"
k ben status >/dev/null

start_hub "$PORT"
for _ in 1 2; do k ann sync >/dev/null || fail "sync ann"; k ben sync >/dev/null || fail "sync ben"; done
cmp -s "$T/ann/story.md" "$T/ben/story.md" || fail "files differ after sync"
grep -q "Ben typed here!" "$T/ann/story.md" || fail "ben's edit did not arrive"

# Same place on both: the line of the sentence now.
want=$(grep -n "^The cat sat on the mat." "$T/ann/story.md" | cut -d: -f1)
for d in ann ben; do
    [ "$(field $d "$S1" line)" = "$want" ] || fail "$d: draft at line $(field $d "$S1" line), want $want"
    [ "$(field $d "$S1" status)" = open ] || fail "$d: draft status $(field $d "$S1" status)"
    [ "$(field $d "$S1" author)" = ann ] || fail "$d: draft author"
    [ "$(field $d "$S2" status)" = stale ] || fail "$d: replacement should be stale"
    [ "$(field $d "$S3" status)" = open ] || fail "$d: line suggestion status"
done
[ "$(field ben "$S3" line)" = "$(grep -n '^last line$' "$T/ben/story.md" | cut -d: -f1)" ] ||
    fail "line suggestion moved wrong: $(field ben "$S3" line)"
k ben suggestions | grep -q "^$S1 .*story.md:$want .*ann via ${VIA#ai:}" ||
    fail "listing: $(k ben suggestions)"

# A stale suggestion is refused (exit 4), nothing applied.
before=$(md5sum <"$T/ann/story.md")
k ann accept "$S2" >/dev/null 2>"$T/stale.err"
[ $? -eq 4 ] || fail "accepting a stale suggestion: exit $?"
grep -q "stale" "$T/stale.err" || fail "stale message: $(cat "$T/stale.err")"
[ "$(md5sum <"$T/ann/story.md")" = "$before" ] || fail "a stale suggestion changed the file"

# ann accepts the draft: right after the sentence, synced, blamed via the model.
k ann accept "$S1" >/dev/null || fail "accept"
for _ in 1 2; do k ann sync >/dev/null || fail "sync ann"; k ben sync >/dev/null || fail "sync ben"; done
cmp -s "$T/ann/story.md" "$T/ben/story.md" || fail "files differ after accept"
python3 - "$T/ben/story.md" "$DRAFT" <<'EOF' || fail "accepted text misplaced: $(cat "$T/ben/story.md")"
import sys
text, draft = open(sys.argv[1]).read(), sys.argv[2]
i = text.index("The cat sat on the mat.") + len("The cat sat on the mat.")
assert text[i:].startswith(draft), (text, draft)
assert "Ben typed here!" in text[i + len(draft):], text
EOF
for d in ann ben; do
    [ "$(field $d "$S1" status)" = accepted ] || fail "$d: status after accept $(field $d "$S1" status)"
    k $d blame --json story.md | python3 -c '
import json, sys
draft_first = sys.argv[1].split("\n")[0]
hits = [l for l in json.load(sys.stdin) if draft_first in l["text"]]
assert hits and all(l["author"] == "ann" and l["via"] == sys.argv[2] for l in hits), hits' \
        "$DRAFT" "$VIA" || fail "$d: blame does not name ann via the model"
    k $d suggestions | grep -q "^$S1" && fail "$d: an accepted suggestion is still listed as open"
done
k ann accept "$S1" >/dev/null 2>&1 && fail "accepted twice"

# ben rejects one; the rejection syncs back.
k ben reject "$S3" >/dev/null || fail "reject"
for _ in 1 2; do k ben sync >/dev/null; k ann sync >/dev/null; done
[ "$(field ann "$S3" status)" = rejected ] || fail "reject did not sync: $(field ann "$S3" status)"
grep -q "a line from ann" "$T/ann/story.md" && fail "a rejected suggestion was applied"

# Bad input: a message and a non-zero exit, the store intact.
k ann accept zz >/dev/null 2>"$T/e1" && fail "accept zz"
grep -q "not a note id" "$T/e1" || fail "message: $(cat "$T/e1")"
k ann accept 0000 >/dev/null 2>"$T/e2" && fail "accept unknown"
grep -q "no note" "$T/e2" || fail "message: $(cat "$T/e2")"
k ann suggest story.md --after "no such text" -m x >/dev/null 2>&1 && fail "suggest on missing text"
k ann suggest nosuch.md --at 1 -m x >/dev/null 2>&1 && fail "suggest on a missing file"
k ann check >/dev/null || fail "check ann"
k ben check >/dev/null || fail "check ben"
# notes never appear as files
[ -e "$T/ann/.kith/notes" ] && fail "notes were written to the folder"
k ann ls | grep -q notes && fail "ls lists notes"
echo "suggest_sync: ok"
