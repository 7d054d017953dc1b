#!/bin/bash
# `kith hub` as a user runs it: argument errors, the one ready line on an
# ephemeral port, the certificate made once and reused (same fingerprint,
# equal to SHA-256 of its DER form), an operator's own certificate, garbage
# and plain HTTP on the port not stopping it, clean exits on SIGTERM and
# SIGINT. The protocol itself is tested end to end by tests/unit/sync_hub.c
# (ctest sync_hub), which starts this same binary.
set -euo pipefail
: "${KITH:?KITH must name the kith binary}"
tmp=$(mktemp -d)
hub_pid=
cleanup() {
    [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# start_hub DATA [ARGS...]: starts the hub, waits for its line, sets
# hub_pid, hub_port, hub_fp.
start_hub() {
    local data=$1
    shift
    rm -f "$tmp/out" "$tmp/err"
    "$KITH" hub --listen 127.0.0.1:0 --data "$data" "$@" >"$tmp/out" 2>"$tmp/err" &
    hub_pid=$!
    for _ in $(seq 100); do
        [ -s "$tmp/out" ] && break
        sleep 0.05
    done
    local line
    line=$(head -n1 "$tmp/out")
    if [[ "$line" =~ ^hub:\ wss://127\.0\.0\.1:([0-9]+)\ fingerprint\ SHA256:([0-9a-f]{64})$ ]]; then
        hub_port=${BASH_REMATCH[1]}
        hub_fp=${BASH_REMATCH[2]}
        return 0
    fi
    echo "bad ready line: '$line'"
    cat "$tmp/err"
    return 1
}

# stop_hub SIGNAL: the hub must exit 0 within 5 s.
stop_hub() {
    kill "-$1" "$hub_pid"
    local st=0
    for _ in $(seq 100); do
        kill -0 "$hub_pid" 2>/dev/null || break
        sleep 0.05
    done
    wait "$hub_pid" || st=$?
    hub_pid=
    return "$st"
}

# usage errors
"$KITH" hub --help >"$tmp/h" && grep -q -- "--listen ADDR:PORT" "$tmp/h" && ok || bad "hub --help"
st=0; "$KITH" hub --data "$tmp/x" 2>"$tmp/e" || st=$?
[ "$st" -eq 2 ] && grep -q "required" "$tmp/e" && ok || bad "missing --listen (status $st)"
st=0; "$KITH" hub --listen nowhere --data "$tmp/x" 2>"$tmp/e" || st=$?
[ "$st" -ne 0 ] && grep -q "bad listen address 'nowhere'" "$tmp/e" && ok || bad "bad listen address"
st=0; "$KITH" hub --listen 127.0.0.1:0 --data "$tmp/x" --cert only.pem 2>"$tmp/e" || st=$?
[ "$st" -eq 2 ] && ok || bad "--cert without --key (status $st)"

# first start: a certificate is made; the fingerprint is its DER SHA-256
start_hub "$tmp/data" && ok || bad "first start"
fp1=$hub_fp
[ -f "$tmp/data/cert.pem" ] && [ -f "$tmp/data/key.pem" ] && ok || bad "cert files missing"
[ "$(stat -c %a "$tmp/data/key.pem")" = 600 ] && ok || bad "key.pem not 0600"
if command -v openssl >/dev/null; then
    der=$(openssl x509 -in "$tmp/data/cert.pem" -outform DER | sha256sum | cut -c1-64)
    [ "$der" = "$fp1" ] && ok || bad "fingerprint $fp1 is not the DER hash $der"
fi
# garbage, a plain TCP hello and a plain HTTP request do not stop it
exec 3<>"/dev/tcp/127.0.0.1/$hub_port" && printf 'garbage\r\n\r\n' >&3 && exec 3>&- || true
exec 3<>"/dev/tcp/127.0.0.1/$hub_port" && printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3 &&
    exec 3>&- || true
sleep 0.2
kill -0 "$hub_pid" && ok || bad "hub died on garbage"
stop_hub TERM && ok || bad "SIGTERM exit status"
grep -q "hub stopped" "$tmp/err" && ok || bad "no 'hub stopped' line"
[ ! -e "$tmp/data/hub.db-wal" ] && ok || bad "WAL left behind after a clean stop"

# second start: same certificate, same fingerprint; SIGINT also clean
start_hub "$tmp/data" && ok || bad "second start"
[ "$hub_fp" = "$fp1" ] && ok || bad "fingerprint changed across restarts"
stop_hub INT && ok || bad "SIGINT exit status"

# an operator's certificate
if command -v openssl >/dev/null; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=op \
        -keyout "$tmp/op.key" -out "$tmp/op.crt" 2>/dev/null
    start_hub "$tmp/data2" --cert "$tmp/op.crt" --key "$tmp/op.key" && ok || bad "start with --cert"
    der=$(openssl x509 -in "$tmp/op.crt" -outform DER | sha256sum | cut -c1-64)
    [ "$hub_fp" = "$der" ] && ok || bad "--cert fingerprint"
    [ ! -e "$tmp/data2/cert.pem" ] && ok || bad "made a certificate despite --cert"
    stop_hub TERM && ok || bad "stop after --cert"
fi

# the port is busy: a clear error, not a hang
start_hub "$tmp/data" && ok || bad "third start"
st=0
timeout 10 "$KITH" hub --listen "127.0.0.1:$hub_port" --data "$tmp/data3" 2>"$tmp/e2" || st=$?
[ "$st" -ne 0 ] && [ "$st" -ne 124 ] && grep -q "cannot" "$tmp/e2" && ok || bad "busy port (status $st)"
stop_hub TERM && ok || bad "stop after busy port"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
