#!/usr/bin/env bash
# The local HTTP API end to end: `kith serve` with the bundled model, driven
# with curl as a user or an editor would. Models list; a greedy completion
# equal to `kith ai run`'s; chat; streaming (SSE chunks, then [DONE]);
# embeddings of the model's dimension; refusals (no token 401, foreign Host
# 421, foreign Origin 403, oversized body 413, malformed JSON 400), after
# which it still answers; the token file is 0600; SIGTERM stops it cleanly.
# Then the workspace endpoints (/kith/...) of `kith daemon` on a workspace:
# status, files (also at a past version), ask and catch-up with the model,
# suggestions listed and accepted, and their refusals (401, 421, 403, 400,
# 404 for an unknown suggestion, 405); `kith serve --workspace` serves them too.
set -euo pipefail
KITH=${KITH:?set KITH to the kith binary}
fail() { echo "FAIL: $*" >&2; [ -f "$T/err" ] && sed 's/^/  serve: /' "$T/err" >&2; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl is needed (scripts/install-deps)" >&2; exit 1; }
unset KITH_MODEL
T=$(mktemp -d)
export HOME=$T   # no user models folder: the bundled model is served
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

"$KITH" serve --port 0 --token-file "$T/token" >"$T/out" 2>"$T/err" &
PID=$!
for _ in $(seq 100); do grep -q '^api: ' "$T/out" && break; sleep 0.1; done
line=$(head -n1 "$T/out")
case "$line" in "api: http://127.0.0.1:"*) ;; *) fail "no ready line: '$line'" ;; esac
PORT=${line##*:}
URL=http://127.0.0.1:$PORT
[ "$(stat -c %a "$T/token")" = 600 ] || fail "token file mode $(stat -c %a "$T/token")"
TOKEN=$(cat "$T/token")
[ ${#TOKEN} -eq 64 ] || fail "token length ${#TOKEN}"
AUTH="Authorization: Bearer $TOKEN"

# code BODYFILE curl-args...: prints the HTTP status, keeps the body
code() { local out=$1; shift; curl -s -o "$out" -w '%{http_code}' "$@"; }

# models
[ "$(code "$T/b" -H "$AUTH" "$URL/v1/models")" = 200 ] || fail "models status"
grep -q '"id":"stories260K-f32"' "$T/b" || fail "models list: $(cat "$T/b")"

# a completion at temperature 0 is kith ai run's greedy text (both are
# jansson-escaped JSON strings, so they compare as they are)
want=$("$KITH" ai run --json --temp 0 -n 40 "Once upon a time" | grep -oE '"text":"([^"\\]|\\.)*"')
[ "$(code "$T/b" -H "$AUTH" "$URL/v1/completions" \
      -d '{"model":"stories260K-f32","prompt":"Once upon a time","max_tokens":40,"temperature":0}')" = 200 ] ||
    fail "completion status: $(cat "$T/b")"
got=$(grep -oE '"text":"([^"\\]|\\.)*"' "$T/b")
[ "$got" = "$want" ] || fail "completion differs from kith ai run: $got vs $want"
grep -q '"object":"text_completion"' "$T/b" || fail "completion object"
grep -q '"completion_tokens":40' "$T/b" || fail "completion usage: $(cat "$T/b")"

# chat
[ "$(code "$T/b" -H "$AUTH" -H 'Content-Type: application/json' "$URL/v1/chat/completions" \
      -d '{"messages":[{"role":"system","content":"You tell stories."},{"role":"user","content":"Hi"}],"max_tokens":16,"seed":7}')" = 200 ] ||
    fail "chat status: $(cat "$T/b")"
grep -q '"object":"chat.completion"' "$T/b" || fail "chat object: $(cat "$T/b")"
grep -q '"message":{"role":"assistant","content":' "$T/b" || fail "chat message: $(cat "$T/b")"

# streaming: SSE chunks, the finish, then [DONE]
[ "$(code "$T/b" -N -H "$AUTH" "$URL/v1/chat/completions" \
      -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":12,"stream":true}')" = 200 ] ||
    fail "stream status"
[ "$(grep -c '^data: {' "$T/b")" -ge 3 ] || fail "stream chunks: $(cat "$T/b")"
grep -q '"object":"chat.completion.chunk"' "$T/b" || fail "chunk object"
grep -q '"finish_reason":"length"' "$T/b" || fail "stream finish"
[ "$(grep '^data: ' "$T/b" | tail -n1)" = "data: [DONE]" ] || fail "stream end: $(tail -n3 "$T/b")"

# embeddings: a vector of the model's dimension
dim=$("$KITH" ai info --json | grep -oE '"n_embd":[0-9]+' | cut -d: -f2)
[ "$(code "$T/b" -H "$AUTH" "$URL/v1/embeddings" -d '{"input":"The cat sat."}')" = 200 ] ||
    fail "embeddings status"
vec=$(grep -oE '"embedding":\[[^]]*\]' "$T/b")
n=$(echo "$vec" | tr -cd ',' | wc -c)
[ $((n + 1)) -eq "$dim" ] || fail "embedding has $((n + 1)) numbers, the model $dim"

# refusals
[ "$(code "$T/b" "$URL/v1/models")" = 401 ] || fail "no token"
[ "$(code "$T/b" -H "Authorization: Bearer wrong-token-wrong-token" "$URL/v1/models")" = 401 ] ||
    fail "wrong token"
st=$(code "$T/b" -H "$AUTH" -H "Host: attacker.example:$PORT" "$URL/v1/models")
[ "$st" = 421 ] || [ "$st" = 403 ] || fail "foreign Host: $st"
[ "$(code "$T/b" -H "$AUTH" -H "Origin: http://attacker.example" "$URL/v1/models")" = 403 ] ||
    fail "foreign Origin"
head -c 2000000 /dev/zero | tr '\0' 'x' >"$T/big"
[ "$(code "$T/b" -H "$AUTH" --data-binary @"$T/big" "$URL/v1/completions")" = 413 ] ||
    fail "oversized body"
[ "$(code "$T/b" -H "$AUTH" -d '{"prompt": "unterminated' "$URL/v1/completions")" = 400 ] ||
    fail "malformed JSON"
grep -q '"error":{"message":"malformed JSON' "$T/b" || fail "error object: $(cat "$T/b")"

# and it still serves
[ "$(code "$T/b" -H "$AUTH" "$URL/v1/models")" = 200 ] || fail "not serving after refusals"
[ "$(code "$T/b" "$URL/health")" = 200 ] || fail "health"

kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
[ $rc -eq 0 ] || fail "serve exited $rc after SIGTERM"
grep -q 'api stopped' "$T/err" || fail "no clean stop"

# a token file others can read is refused
chmod 644 "$T/token"
set +e
"$KITH" serve --port 0 --token-file "$T/token" >/dev/null 2>"$T/err2"; rc=$?
set -e
[ $rc -eq 1 ] || fail "readable token: exit $rc"
grep -q "0600" "$T/err2" || fail "readable token message: $(cat "$T/err2")"
# ---- the workspace endpoints (/kith/...), served by kith daemon ----------------
W=$T/ws
mkdir -p "$W"
cd "$W"
KITH_USER=alice "$KITH" init --name alice >/dev/null
printf 'The zeppelin flew over the town.\nIt was red.\n' >zep.md
printf 'Lunch is at noon.\n' >plan.md
"$KITH" status >/dev/null
base=$("$KITH" log --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
out=$("$KITH" ai draft plan.md "more" --temp 0 -n 8 2>/dev/null | tail -n 1)
sid=${out#suggestion }; sid=${sid%% *}
[ ${#sid} -eq 8 ] || fail "no suggestion to serve: $out"
"$KITH" daemon --no-lan --api 0 >"$T/dout" 2>"$T/err" &
PID=$!
for _ in $(seq 100); do grep -q '^api: ' "$T/dout" && break; sleep 0.1; done
line=$(grep '^api: ' "$T/dout" | head -n1)
case "$line" in "api: http://127.0.0.1:"*) ;; *) fail "daemon: no ready line: '$line'" ;; esac
URL=http://127.0.0.1:${line##*:}
[ "$(stat -c %a .kith/api-token)" = 600 ] || fail "daemon token mode"
AUTH="Authorization: Bearer $(cat .kith/api-token)"
# py FILE EXPR...: asserts each Python expression over the JSON in FILE (as j)
py() {
    local f=$1; shift
    python3 - "$f" "$@" <<'PY' || fail "$(cat "$f")"
import json, sys
j = json.load(open(sys.argv[1]))
for e in sys.argv[2:]:
    assert eval(e), e
PY
}

[ "$(code "$T/b" -H "$AUTH" "$URL/kith/status")" = 200 ] || fail "status: $(cat "$T/b")"
py "$T/b" 'j["user"] == "alice" and len(j["workspace"]) == 32 and len(j["device"]) == 64' \
    'j["counts"]["files"] == 2 and j["counts"]["suggestions"] == 1' \
    'j["model"] == "stories260K-f32" and "sync" in j'
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/files")" = 200 ] || fail "files"
py "$T/b" '[f["path"] for f in j["files"]] == ["plan.md", "zep.md"]' \
    'all(f["author"] == "alice" and not f["binary"] for f in j["files"])'
# an edit, recorded by the daemon; the old text stays readable with ?at=
printf 'The zeppelin flew over the sea.\nIt was red.\n' >zep.md
for _ in $(seq 50); do
    code "$T/b" -H "$AUTH" "$URL/kith/files/zep.md" >/dev/null
    grep -q 'the sea' "$T/b" && break
    sleep 0.1
done
py "$T/b" 'j["text"] == "The zeppelin flew over the sea.\nIt was red.\n" and j["at"] is None'
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/files/zep.md?at=$base")" = 200 ] || fail "file at"
py "$T/b" 'j["text"] == "The zeppelin flew over the town.\nIt was red.\n"' "j['at'] == '$base'"
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/files/missing.md")" = 404 ] || fail "missing file"
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/files/zep.md?at=nonsense")" = 400 ] || fail "bad version"

# ask: sources only, then with the model's answer (a worker thread writes it)
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/ask" -d '{"question":"zeppelin","max_tokens":0}')" = 200 ] ||
    fail "ask sources: $(cat "$T/b")"
py "$T/b" 'j["answer"] is None' 'j["sources"][0] == {"path": "zep.md", "first": 1, "last": 2}'
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/ask" \
      -d '{"question":"where did the zeppelin fly","max_tokens":16,"temperature":0}')" = 200 ] ||
    fail "ask: $(cat "$T/b")"
py "$T/b" 'isinstance(j["answer"], str) and j["answer"]' 'j["model"] == "stories260K-f32"' \
    '"zep.md" in [s["path"] for s in j["sources"]]'
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/ask" -d '{"question":"?"}')" = 400 ] || fail "ask no words"
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/ask" -d '{"question":7}')" = 400 ] || fail "ask type"

# catch-up since the first change: zep.md by alice, and a summary
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/catchup" \
      -d "{\"since\":\"$base\",\"max_tokens\":12,\"temperature\":0}")" = 200 ] ||
    fail "catchup: $(cat "$T/b")"
py "$T/b" "j['since'] == '$base' and j['changes'] == 1" \
    'j["files"] == [{"path": "zep.md", "added": 1, "removed": 1, "changes": 1, "authors": ["alice"]}]' \
    'isinstance(j["summary"], str)'
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/catchup" -d '{"since":"nonsense"}')" = 400 ] ||
    fail "catchup bad since: $(cat "$T/b")"

# suggestions: listed, accepted (the file gets it), then gone from the open list
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/suggestions?path=plan.md")" = 200 ] || fail "suggestions"
py "$T/b" 'len(j["suggestions"]) == 1' "j['suggestions'][0]['id'].startswith('$sid')" \
    'j["suggestions"][0]["path"] == "plan.md" and j["suggestions"][0]["author"] == "alice"' \
    'j["suggestions"][0]["via"] == "ai:stories260K-f32" and j["suggestions"][0]["status"] == "open"'
[ "$(code "$T/b" -H "$AUTH" -X POST "$URL/kith/suggestions/$sid/accept")" = 200 ] ||
    fail "accept: $(cat "$T/b")"
py "$T/b" 'j["status"] == "accepted" and len(j["change"]) == 32'
[ "$(head -n 1 plan.md)" = "Lunch is at noon." ] && [ "$(wc -l <plan.md)" -ge 2 ] ||
    fail "accept did not write plan.md: $(cat plan.md)"
code "$T/b" -H "$AUTH" "$URL/kith/suggestions" >/dev/null
py "$T/b" 'j["suggestions"] == []'
code "$T/b" -H "$AUTH" "$URL/kith/suggestions?all=1" >/dev/null
py "$T/b" 'j["suggestions"][0]["status"] == "accepted"'
[ "$(code "$T/b" -H "$AUTH" -X POST "$URL/kith/suggestions/$sid/accept")" = 400 ] ||
    fail "accept twice: $(cat "$T/b")"
[ "$(code "$T/b" -H "$AUTH" -X POST "$URL/kith/suggestions/0000aaaa/accept")" = 404 ] ||
    fail "unknown suggestion accept"
[ "$(code "$T/b" -H "$AUTH" -X POST "$URL/kith/suggestions/0000aaaa/reject")" = 404 ] ||
    fail "unknown suggestion reject"
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/comments")" = 200 ] || fail "comments"
py "$T/b" 'j["comments"] == []'

# refusals, and it still serves
[ "$(code "$T/b" "$URL/kith/status")" = 401 ] || fail "kith: no token"
[ "$(code "$T/b" -H "$AUTH" -H "Host: attacker.example" "$URL/kith/files")" = 421 ] ||
    fail "kith: foreign Host"
[ "$(code "$T/b" -H "$AUTH" -H "Origin: http://attacker.example" "$URL/kith/files")" = 403 ] ||
    fail "kith: foreign Origin"
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/ask" -d '{"question": "unterminated')" = 400 ] ||
    fail "kith: malformed JSON"
grep -q '"error":{"message":"malformed JSON' "$T/b" || fail "kith: error object: $(cat "$T/b")"
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/ask")" = 405 ] || fail "kith: GET on a POST route"
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/nothing")" = 404 ] || fail "kith: unknown endpoint"
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/status")" = 200 ] || fail "kith: not serving after refusals"
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
[ $rc -eq 0 ] || fail "daemon exited $rc after SIGTERM"

# kith serve --workspace serves the same endpoints
"$KITH" serve --port 0 --token-file "$T/token2" --workspace "$W" >"$T/out" 2>"$T/err" &
PID=$!
for _ in $(seq 100); do grep -q '^api: ' "$T/out" && break; sleep 0.1; done
line=$(head -n1 "$T/out")
URL=http://127.0.0.1:${line##*:}
AUTH="Authorization: Bearer $(cat "$T/token2")"
[ "$(code "$T/b" -H "$AUTH" "$URL/kith/files/plan.md")" = 200 ] || fail "serve --workspace"
py "$T/b" 'j["text"].startswith("Lunch is at noon.\n")'
kill -TERM "$PID"
wait "$PID" || fail "serve --workspace did not stop cleanly"
PID=

# the daemon takes its API port from .kith/config when no option says
P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'api = 127.0.0.1:%s\n' "$P" >>"$W/.kith/config"
"$KITH" -C "$W" daemon --no-lan >"$T/dout2" 2>"$T/err2" &
PID=$!
for _ in $(seq 100); do grep -q '^api: ' "$T/dout2" && break; sleep 0.1; done
[ "$(head -n1 "$T/dout2")" = "api: http://127.0.0.1:$P" ] || fail "config api port: $(cat "$T/dout2" "$T/err2")"
kill -TERM "$PID"
wait "$PID" || fail "daemon (config port) did not stop cleanly"
PID=
sed -i 's/^api = .*/api = 10.0.0.1:80/' "$W/.kith/config"
"$KITH" -C "$W" daemon --no-lan >/dev/null 2>"$T/err3" && fail "a non-loopback api in the config was taken"
grep -q "127.0.0.1 only" "$T/err3" || fail "config api message: $(cat "$T/err3")"
echo "ok api_serve"
