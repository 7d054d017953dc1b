#!/usr/bin/env bash
# The local HTTP API end to end: `kith serve` with the bundled model, driven
# with curl as a user or an editor would. Models list; a greedy completion
# equal to `kith ai run`'s; chat; streaming (SSE chunks, then [DONE]);
# embeddings of the model's dimension; refusals (no token 401, foreign Host
# 421, foreign Origin 403, oversized body 413, malformed JSON 400), after
# which it still answers; the token file is 0600; SIGTERM stops it cleanly.
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
echo "ok api_serve"
