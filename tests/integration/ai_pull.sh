#!/usr/bin/env bash
# `kith ai pull` end to end against tests/tools/http_serve (a loopback HTTP/1.1
# server built next to kith): a pull lands in the models folder with the right
# SHA-256 and runs by name; a cut connection resumes with a Range request; a
# Ctrl-C keeps the .part and the next pull resumes it; a server that ignores
# Range makes it start over; a bad checksum, a 404, an HTML page, a refused
# connection and a full disk fail with "kith: error:" and leave no model
# behind; an existing file is kept unless --force.
set -euo pipefail
KITH=${KITH:?set KITH to the kith binary}
SRC=${KITH_SRC:?set KITH_SRC to the repository}
SERVE=${KITH_HTTP_SERVE:-$(dirname "$KITH")/http_serve}
[ -x "$SERVE" ] || { echo "FAIL: $SERVE not built (cmake --build ... --target http_serve)" >&2; exit 1; }
fail() { echo "FAIL: $*" >&2; exit 1; }
unset KITH_MODEL XDG_DATA_HOME
T=$(mktemp -d)
export HOME=$T/home
MODELS=$HOME/.local/share/kith/models
SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap 'stop_server; rm -rf "$T"' EXIT

# start_server [http_serve options]: serves $T/www, sets PORT and BASE.
start_server() {
    stop_server
    : >"$T/port"
    "$SERVE" --log "$T/log" "$@" "$T/www" >"$T/port" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        PORT=$(head -n1 "$T/port")
        [ -n "$PORT" ] && break
        sleep 0.05
    done
    [ -n "$PORT" ] || fail "http_serve printed no port"
    BASE="http://127.0.0.1:$PORT"
}

mkdir -p "$T/www"
cp "$SRC/models/stories260K-q8_0.gguf" "$T/www/"
printf '<!DOCTYPE html>\n<html><body>Sign in to download</body></html>\n' >"$T/www/page.gguf"
SUM=$(sha256sum "$T/www/stories260K-q8_0.gguf" | cut -d' ' -f1)
SIZE=$(stat -c %s "$T/www/stories260K-q8_0.gguf")
want="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.
Lily"
# check_model FILE: the pulled file is byte for byte the served one.
check_model() {
    [ -f "$1" ] || fail "$1 missing"
    [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SUM" ] || fail "$1: wrong sha256"
    [ ! -e "$1.part" ] || fail "$1.part left behind"
}
# expect_fail PATTERN CMD...: exit status 1 and "kith: error:" with PATTERN.
expect_fail() {
    local pat=$1 rc=0 err
    shift
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    [ $rc -eq 1 ] || fail "$*: exit $rc, wanted 1 ($err)"
    case "$err" in *"kith: error: "*"$pat"*) ;; *) fail "$*: message '$err' lacks '$pat'" ;; esac
}

# 1. a pull with the right checksum into the default folder, then run it by name
start_server
"$KITH" ai pull --sha256 "$SUM" "$BASE/stories260K-q8_0.gguf" >"$T/out"
grep -q "saved $MODELS/stories260K-q8_0.gguf" "$T/out" || fail "pull output: $(cat "$T/out")"
grep -q "$SUM" "$T/out" || fail "pull does not print the sha256"
check_model "$MODELS/stories260K-q8_0.gguf"
got=$("$KITH" ai run --model stories260K-q8_0 --temp 0 -n 60 --threads 1 "Once upon a time")
[ "$got" = "$want" ] || fail "pulled model by name: $got"
got=$("$KITH" ai run --model stories260K-q8_0.gguf --temp 0 -n 60 --threads 1 "Once upon a time")
[ "$got" = "$want" ] || fail "pulled model by file name: $got"
# with no --model, the models folder comes before the bundled model
"$KITH" ai info --json | grep -q "\"path\":\"$MODELS/stories260K-q8_0.gguf\"" || fail "default lookup"

# 2. an existing file is refused, --force replaces it
expect_fail "already exists" "$KITH" ai pull "$BASE/stories260K-q8_0.gguf"
check_model "$MODELS/stories260K-q8_0.gguf"
"$KITH" ai pull --force "$BASE/stories260K-q8_0.gguf" >/dev/null
check_model "$MODELS/stories260K-q8_0.gguf"

# 3. a wrong checksum deletes the download (bad hex is refused before any request)
expect_fail "checksum mismatch" "$KITH" ai pull --name bad --sha256 "${SUM//?/0}" \
    "$BASE/stories260K-q8_0.gguf"
[ ! -e "$MODELS/bad.gguf" ] && [ ! -e "$MODELS/bad.gguf.part" ] || fail "bad checksum left a file"
expect_fail "64 hex digits" "$KITH" ai pull --sha256 abc "$BASE/stories260K-q8_0.gguf"

# 4. HTTP 404, an HTML page, a URL that is not http(s)
expect_fail "HTTP 404" "$KITH" ai pull "$BASE/missing.gguf"
[ ! -e "$MODELS/missing.gguf.part" ] || fail "404 left a .part"
expect_fail "not a GGUF file" "$KITH" ai pull "$BASE/page.gguf"
[ ! -e "$MODELS/page.gguf" ] && [ ! -e "$MODELS/page.gguf.part" ] || fail "HTML page kept"
expect_fail "not an http" "$KITH" ai pull "file:///etc/passwd"

# 5. a cut connection: the pull resumes by itself with a Range request;
#    --dir and a query string in the URL
: >"$T/log"
start_server --drop-after 100000
"$KITH" ai pull --dir "$T/d5" "$BASE/stories260K-q8_0.gguf?download=true" >/dev/null 2>"$T/err"
check_model "$T/d5/stories260K-q8_0.gguf"
grep -q "connection lost" "$T/err" || fail "cut not reported: $(cat "$T/err")"
grep -q "^GET /stories260K-q8_0.gguf bytes=100000- 206$" "$T/log" || fail "no resume: $(cat "$T/log")"

# 6. Ctrl-C on a slow link keeps the .part; the next pull resumes it
start_server --delay-ms 20
export XDG_DATA_HOME=$T/xdg
"$KITH" ai pull "$BASE/stories260K-q8_0.gguf" >/dev/null 2>"$T/err" &
pid=$!
part=$XDG_DATA_HOME/kith/models/stories260K-q8_0.gguf.part
for _ in $(seq 200); do
    [ -s "$part" ] && [ "$(stat -c %s "$part")" -ge 20000 ] && break
    sleep 0.02
done
kill -INT $pid
rc=0
wait $pid || rc=$?
[ $rc -eq 130 ] || fail "Ctrl-C: exit $rc ($(cat "$T/err"))"
grep -q "run the same command to resume" "$T/err" || fail "Ctrl-C message: $(cat "$T/err")"
kept=$(stat -c %s "$part")
[ "$kept" -gt 0 ] && [ "$kept" -lt "$SIZE" ] || fail "Ctrl-C kept $kept bytes"
: >"$T/log"
start_server
"$KITH" ai pull "$BASE/stories260K-q8_0.gguf" >/dev/null 2>"$T/err"
check_model "$XDG_DATA_HOME/kith/models/stories260K-q8_0.gguf"
grep -q "resuming" "$T/err" || fail "resume not reported: $(cat "$T/err")"
grep -q "^GET /stories260K-q8_0.gguf bytes=$kept- 206$" "$T/log" || fail "no Range $kept: $(cat "$T/log")"
got=$("$KITH" ai run --model stories260K-q8_0 --temp 0 -n 60 --threads 1 "Once upon a time")
[ "$got" = "$want" ] || fail "XDG_DATA_HOME model by name: $got"
unset XDG_DATA_HOME

# 7. a server that ignores Range: the .part is started over, the result is right
start_server --ignore-range
mkdir -p "$T/d7"
head -c 50000 "$T/www/stories260K-q8_0.gguf" >"$T/d7/stories260K-q8_0.gguf.part"
"$KITH" ai pull --dir "$T/d7" "$BASE/stories260K-q8_0.gguf" >/dev/null 2>"$T/err"
check_model "$T/d7/stories260K-q8_0.gguf"
grep -q "starting over" "$T/err" || fail "restart not reported: $(cat "$T/err")"
# a .part that is already whole: the server's 416 finishes it
start_server
mkdir -p "$T/d7b"
cp "$T/www/stories260K-q8_0.gguf" "$T/d7b/stories260K-q8_0.gguf.part"
"$KITH" ai pull --dir "$T/d7b" "$BASE/stories260K-q8_0.gguf" >/dev/null 2>"$T/err"
check_model "$T/d7b/stories260K-q8_0.gguf"

# 8. nothing listening; a full disk (the .part is /dev/full)
port=$PORT
stop_server
expect_fail "cannot connect" "$KITH" ai pull --dir "$T/d8" "http://127.0.0.1:$port/stories260K-q8_0.gguf"
[ -z "$(ls -A "$T/d8")" ] || fail "refused connection left $(ls "$T/d8")"
if [ -c /dev/full ]; then
    start_server
    mkdir -p "$T/d9"
    ln -s /dev/full "$T/d9/stories260K-q8_0.gguf.part"
    expect_fail "disk full" "$KITH" ai pull --dir "$T/d9" "$BASE/stories260K-q8_0.gguf"
    [ ! -e "$T/d9/stories260K-q8_0.gguf" ] || fail "disk full left a model"
fi
echo "ok ai_pull"
