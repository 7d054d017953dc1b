#!/bin/bash
# LAN sync for real (issue 4; docs/PROTOCOL.md "LAN"): three devices join a
# workspace through a hub, the hub goes away, and each device's daemon runs
# in its own network namespace on one bridged LAN (veth pairs to a bridge in
# a fifth namespace). With no hub, they find each other by beacons, open
# sessions (TLS 1.3, both ends proving membership over the channel binding)
# and converge: edits made offline and edits made concurrently while
# connected, byte for byte, every edit present, blame naming the authors.
# Beside them on the LAN: a device of another workspace (finds and gets
# nothing), a device holding a copy of the workspace key under an identity
# that is not a member (refused and logged, its edit goes nowhere and it
# gets nothing new), and a hand-made client that sends a bad signature and
# a malformed frame to a listener (refused, logged).
#
# Needs root and iproute2 (ip netns, veth, bridge); otherwise it skips.
set -uo pipefail
: "${KITH:?KITH must name the kith binary}"

skip() {
    echo "skipped: $*"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to make network namespaces"
command -v ip >/dev/null || skip "iproute2 ('ip') is not installed"

tmp=$(mktemp -d /tmp/kith-lan-sync-XXXXXX)
pre=kls-$$
nss="$pre-sw $pre-a $pre-b $pre-c $pre-d"
port=$((40000 + $$ % 20000))
hubpid=
cleanup() {
    local rc=$?
    set +e
    [ -n "$hubpid" ] && kill "$hubpid" 2>/dev/null && wait "$hubpid" 2>/dev/null
    for ns in $nss; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    done
    sleep 0.2 # let the killed daemons go before their folders do
    for ns in $nss; do ip netns del "$ns" 2>/dev/null; done
    for d in a b c d; do ip link del "kl$$$d" 2>/dev/null; done
    [ -n "${KITH_KEEP:-}" ] || rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap "exit 143" INT TERM HUP # so that cleanup runs when a test runner stops it

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
wait_for() { # SECONDS COMMAND...
    local n=$(($1 * 20))
    shift
    for _ in $(seq "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}
k() { local d=$1; shift; "$KITH" -C "$tmp/$d" "$@"; }

# ---- a workspace, three members, through a hub on loopback ----
"$KITH" hub --listen 127.0.0.1:0 --data "$tmp/hub" >"$tmp/hub.out" 2>"$tmp/hub.log" &
hubpid=$!
wait_for 5 grep -q '^hub: ' "$tmp/hub.out" || { echo "FAIL: hub did not start"; exit 1; }
read -r _ url _ fp <"$tmp/hub.out"
mkdir "$tmp/ann"
(cd "$tmp/ann" && KITH_USER=ann "$KITH" init . >/dev/null)
printf 'title\n\nintro\n\nbody\n' >"$tmp/ann/doc.md"
k ann status >/dev/null
k ann remote add "$url" --fingerprint "$fp" >/dev/null || { echo "FAIL: remote add"; exit 1; }
for who in ben cat; do
    link=$(k ann invite --role writer) || { echo "FAIL: invite"; exit 1; }
    (cd "$tmp" && "$KITH" join "$link" "$who" --name "$who" >/dev/null) ||
        { echo "FAIL: join $who"; exit 1; }
done
# Each device checks LAN peers against the membership chain it last verified
# from a hub (PROTOCOL.md "LAN"): let ann and ben see the joins after theirs.
for d in ann ben cat; do k $d sync >/dev/null || { echo "FAIL: sync $d"; exit 1; }; done
"$KITH" init "$tmp/zed" --name zed >/dev/null # another workspace
printf 'zed only\n' >"$tmp/zed/z.md"
k zed status >/dev/null
# Not a member: the workspace's folder and key, another device identity.
cp -a "$tmp/ann" "$tmp/eve"
rm -f "$tmp/eve/.kith/daemon.pid" "$tmp/eve/.kith/daemon.lock"
"$KITH" init "$tmp/eveid" --name eve >/dev/null
cp "$tmp/eveid/.kith/identity" "$tmp/eve/.kith/identity"
# The hub is gone for good.
kill "$hubpid"
wait "$hubpid" 2>/dev/null
hubpid=

# ---- the LAN: a bridge in its own namespace, one namespace per device ----
for ns in $nss; do
    ip netns add "$ns" 2>"$tmp/err" || skip "cannot make a network namespace: $(cat "$tmp/err")"
    ip -n "$ns" link set lo up
done
ip -n "$pre-sw" link add name br0 type bridge mcast_snooping 0 2>"$tmp/err" ||
    skip "cannot make a bridge: $(cat "$tmp/err")"
ip -n "$pre-sw" link set br0 up
n=1
for d in a b c d; do
    ip link add "kl$$$d" type veth peer name "kl$$${d}s" 2>"$tmp/err" ||
        skip "cannot make a veth pair: $(cat "$tmp/err")"
    ip link set "kl$$$d" netns "$pre-$d"
    ip link set "kl$$${d}s" netns "$pre-sw"
    ip -n "$pre-sw" link set "kl$$${d}s" master br0 up
    ip -n "$pre-$d" addr add "10.214.0.$n/24" dev "kl$$$d"
    ip -n "$pre-$d" link set "kl$$$d" up
    n=$((n + 1))
done

# ---- offline edits of the same file, then the daemons ----
sed -i 's/^title$/title (ann)/' "$tmp/ann/doc.md"
printf 'ben offline\n' >>"$tmp/ben/doc.md"
sed -i 's/^intro$/intro by cat/' "$tmp/cat/doc.md"
printf 'eve was here\n' >>"$tmp/eve/doc.md"
start() { # DIR NS
    ip netns exec "$pre-$2" "$KITH" -C "$tmp/$1" daemon --no-api --lan-port "$port" ${KITH_VERBOSE:+--verbose} \
        2>"$tmp/$1.log" &
}
t0=$(date +%s.%N)
start ann a
start ben b
start cat c
start zed d
for d in ann ben cat zed; do
    wait_for 5 grep -q "daemon started" "$tmp/$d.log" && ok || bad "daemon $d did not start"
done
grep -q "lan: listening for peers on TCP port" "$tmp/ann.log" && ok || bad "ann does not listen"

has_all() { # FILE WORDS... : the file holds every word
    local f=$1
    shift
    for w in "$@"; do grep -qF -- "$w" "$f" || return 1; done
}
same3() { # WORDS... : the three folders equal and holding every word
    cmp -s "$tmp/ann/doc.md" "$tmp/ben/doc.md" && cmp -s "$tmp/ann/doc.md" "$tmp/cat/doc.md" &&
        has_all "$tmp/ann/doc.md" "$@"
}
offline=("title (ann)" "ben offline" "intro by cat")
wait_for 20 same3 "${offline[@]}" && ok ||
    bad "offline edits did not converge: $(for d in ann ben cat; do echo "--$d"; cat "$tmp/$d/doc.md"; done)"
t1=$(date +%s.%N)
echo "offline edits converged over the LAN in $(echo "$t1 - $t0" | bc) s (daemon start included)"
for d in ann ben cat; do
    grep -q "lan: \(connected to\|device .* caught up\)" "$tmp/$d.log" && ok || bad "$d: no session"
done

# ---- live: all three edit the same file at once ----
(sed -i 's/^body$/body, ann live/' "$tmp/ann/doc.md") &
e1=$!
(printf 'ben live\n' >>"$tmp/ben/doc.md") &
e2=$!
(sed -i '1i cat live' "$tmp/cat/doc.md") &
e3=$!
wait $e1 $e2 $e3
live=("${offline[@]}" "body, ann live" "ben live" "cat live")
wait_for 15 same3 "${live[@]}" && ok ||
    bad "live edits did not converge: $(for d in ann ben cat; do echo "--$d"; cat "$tmp/$d/doc.md"; done)"
for d in ann ben cat; do
    diff -r -x .kith "$tmp/ann" "$tmp/$d" >/dev/null && ok || bad "folders ann and $d differ"
done
k cat blame doc.md >"$tmp/blame"
grep -q "(ann .*title (ann)" "$tmp/blame" && grep -q "(ann .*body, ann live" "$tmp/blame" &&
    grep -q "(ben .*ben offline" "$tmp/blame" && grep -q "(ben .*ben live" "$tmp/blame" &&
    grep -q "(cat .*intro by cat" "$tmp/blame" && grep -q "(cat .*cat live" "$tmp/blame" && ok ||
    bad "blame: $(cat "$tmp/blame")"

# ---- status: the state file lists the LAN peers connected ----
lanpeers() { python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["lan"]))' "$1"; }
if command -v python3 >/dev/null; then
    ann_sees2() { test "$(lanpeers "$tmp/ann/.kith/sync-state.json")" = 2; }
    wait_for 5 ann_sees2 && ok ||
        bad "ann's state lists $(lanpeers "$tmp/ann/.kith/sync-state.json") LAN peers, not 2"
    k ann status --json >"$tmp/status.json"
    grep -q '"direction"' "$tmp/status.json" && ok || bad "kith status --json shows no LAN peer"
    [ "$(k ann status | grep -c '^  LAN peer ')" = 2 ] && ok ||
        bad "kith status does not list 2 LAN peers: $(k ann status)"
fi

# ---- another workspace on the same LAN gets nothing ----
[ ! -e "$tmp/zed/doc.md" ] && ok || bad "zed got the workspace's file"
! grep -q "lan: found device" "$tmp/zed.log" && ok || bad "zed found someone"

# ---- a non-member holding the key: refused and logged, nothing crosses ----
start eve d
wait_for 5 grep -q "daemon started" "$tmp/eve.log" && ok || bad "daemon eve did not start"
wait_for 5 grep -q "lan: found device" "$tmp/eve.log" && ok || bad "eve found no one"
wait_for 5 grep -q "refused device" "$tmp/ann.log" "$tmp/ben.log" "$tmp/cat.log" ||
    wait_for 3 grep -q "refused" "$tmp/ann.log" "$tmp/ben.log" "$tmp/cat.log"
grep -q "refused" "$tmp/ann.log" "$tmp/ben.log" "$tmp/cat.log" && ok || bad "eve's refusal not logged"
printf 'after eve\n' >>"$tmp/ben/doc.md"
wait_for 10 same3 "${live[@]}" "after eve" && ok || bad "'after eve' did not reach everyone"
sleep 0.5
! grep -q "after eve" "$tmp/eve/doc.md" && ok || bad "eve got a change"
for d in ann ben cat; do ! grep -q "eve was here" "$tmp/$d/doc.md" && ok || bad "eve's edit reached $d"; done

# ---- a hand-made client: a bad signature, then a malformed frame ----
if command -v python3 >/dev/null; then
    lport=$(sed -n 's/.*lan: listening for peers on TCP port \([0-9]*\).*/\1/p' "$tmp/ann.log" | head -1)
    cat >"$tmp/evil.py" <<'PY'
import base64, os, socket, sqlite3, ssl, struct, sys
host, port, kdir, who = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
wsid = bytes.fromhex(dict(sqlite3.connect(kdir + "/store.db").execute("select * from meta"))["workspace"])
pk = bytes.fromhex(open(who).read().split()[1])
def session(send_auth):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    s = ctx.wrap_socket(socket.create_connection((host, port), timeout=5))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: kith-sync-1\r\n\r\n" % (host, key)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    assert b" 101 " in buf.split(b"\r\n")[0], buf
    buf = buf.split(b"\r\n\r\n", 1)[1]
    def frame():
        nonlocal buf
        while len(buf) < 2 or len(buf) < 2 + (buf[1] & 127):
            buf += s.recv(4096)
        n = buf[1] & 127
        h = 2
        if n == 126:
            while len(buf) < 4: buf += s.recv(4096)
            n, h = struct.unpack(">H", buf[2:4])[0], 4
        while len(buf) < h + n:
            buf += s.recv(4096)
        d, buf = buf[h:h + n], buf[h + n:]
        return d
    def send(payload):
        m = os.urandom(4)
        hdr = bytes([0x82]) + (bytes([0x80 | len(payload)]) if len(payload) < 126
                               else bytes([0x80 | 126]) + struct.pack(">H", len(payload)))
        s.sendall(hdr + m + bytes(b ^ m[i % 4] for i, b in enumerate(payload)))
    ch = frame()
    assert ch[:4] == b"ks\x01\x01", ch[:4]
    if send_auth:
        body = wsid + pk + b"\x00" + os.urandom(64) + struct.pack(">I", 0)
        send(b"ks\x01\x02" + struct.pack(">I", len(body)) + body)
    else:
        send(b"this is not a frame")
    err = frame()
    assert err[3] == 0x7F, err[:4]
    code = struct.unpack(">H", err[8:10])[0]
    print("refused with code", code, err[14:].decode(errors="replace"))
    return code
assert session(True) == 16
assert session(False) == 5
print("evil client ok")
PY
    ip netns exec "$pre-d" timeout 20 python3 "$tmp/evil.py" 10.214.0.1 "$lport" "$tmp/ann/.kith" \
        "$tmp/ben/.kith/identity" >"$tmp/evil.out" 2>&1 || true
    grep -q "evil client ok" "$tmp/evil.out" && ok || bad "hand-made client: $(tail -3 "$tmp/evil.out")"
    grep -q "bad authentication signature" "$tmp/ann.log" && ok || bad "bad signature not logged"
    grep -q "malformed frame" "$tmp/ann.log" && ok || bad "malformed frame not logged"
fi

# ---- stopping ----
for d in ann ben cat zed eve; do
    k "$d" daemon stop >/dev/null && ok || bad "stop $d"
done
t2=$(date +%s.%N)
echo "$pass passed, $fail failed ($(echo "$t2 - $t0" | bc) s with daemons)"
if [ "$fail" -ne 0 ]; then
    for d in ann ben cat eve; do echo "--- $d.log"; tail -25 "$tmp/$d.log"; done
fi
[ "$fail" -eq 0 ]
