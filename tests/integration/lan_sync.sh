#!/bin/bash
# LAN sync for real (issue 4; docs/PROTOCOL.md "LAN"): three devices join a
# workspace through a hub, the hub goes away, and each device's daemon runs
# in its own network namespace on one bridged LAN (veth pairs to a bridge in
# a fifth namespace). The third (cat) joins after the first two last talked
# to the hub, so their chains lack it: the sessions carry the chains
# (13.3), ann and ben adopt cat's longer one, and cat keeps its own over
# their shorter ones. With no hub, they find each other by beacons, open
# sessions (TLS 1.3, both ends proving membership over the channel binding)
# and converge: edits made offline and edits made concurrently while
# connected, byte for byte, every edit present, blame naming the authors.
# Beside them on the LAN: a device of another workspace (finds and gets
# nothing), a device holding a copy of the workspace key under an identity
# that is not a member (refused and logged, its edit goes nowhere and it
# gets nothing new), a member of a forked chain (fox, who joined through a
# copy of the hub's data: its chain and theirs refused both ways), and a
# hand-made client that sends a bad signature and a malformed frame to a
# listener (refused, logged). Last, `kith sync` with no hub and no daemon of
# its own syncs with the daemons over the LAN (13.5).
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
hubport=$((21000 + $$ % 15000))
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
hub() { # DATA: a hub on 127.0.0.1:$hubport (the same URL and certificate for a copy of DATA)
    "$KITH" hub --listen "127.0.0.1:$hubport" --data "$tmp/$1" >"$tmp/$1.out" 2>"$tmp/$1.log" &
    hubpid=$!
    wait_for 5 grep -q '^hub: ' "$tmp/$1.out" || { echo "FAIL: hub $1 did not start"; exit 1; }
    read -r _ url _ fp <"$tmp/$1.out"
}
hub_stop() { kill "$hubpid"; wait "$hubpid" 2>/dev/null; hubpid=; }
join() { # INVITER WHO
    local link
    link=$(k "$1" invite --role writer) || { echo "FAIL: invite $2"; exit 1; }
    (cd "$tmp" && "$KITH" join "$link" "$2" --name "$2" >/dev/null) ||
        { echo "FAIL: join $2"; exit 1; }
}
hub hub
mkdir "$tmp/ann"
(cd "$tmp/ann" && KITH_USER=ann "$KITH" init . >/dev/null)
printf 'title\n\nintro\n\nbody\n' >"$tmp/ann/doc.md"
k ann status >/dev/null
k ann remote add "$url" --fingerprint "$fp" >/dev/null || { echo "FAIL: remote add"; exit 1; }
join ann ben # ben never talks to the hub again
hub_stop
# A fork: a copy of the hub's data and of ann's folder, where ann's copy
# invites fox; the chain of fox shares ann's and ben's first ops, then differs.
cp -a "$tmp/hub" "$tmp/hub2"
cp -a "$tmp/ann" "$tmp/ann2"
hub hub2
join ann2 fox
hub_stop
hub hub
join ann cat # after ben's last hub contact, and ann's last is the invite
hub_stop
chain_ops() { python3 -c 'import sqlite3,sys; b=sqlite3.connect(sys.argv[1]).execute("select ops from lan_chain").fetchone()[0]
n=i=0
while i < len(b): i += 4 + int.from_bytes(b[i:i+4], "big"); n += 1
print(n)' "$tmp/$1/.kith/sync.db"; }
if command -v python3 >/dev/null; then
    # ann: genesis, invite ben, join ben, invite cat; ben lacks the last; cat has one more.
    [ "$(chain_ops ben)" -lt "$(chain_ops ann)" ] && [ "$(chain_ops ann)" -lt "$(chain_ops cat)" ] &&
        ok || bad "chains held: ben $(chain_ops ben), ann $(chain_ops ann), cat $(chain_ops cat)"
fi
"$KITH" init "$tmp/zed" --name zed >/dev/null # another workspace
printf 'zed only\n' >"$tmp/zed/z.md"
k zed status >/dev/null
# Not a member: the workspace's folder and key, another device identity.
cp -a "$tmp/ann" "$tmp/eve"
rm -f "$tmp/eve/.kith/daemon.pid" "$tmp/eve/.kith/daemon.lock"
"$KITH" init "$tmp/eveid" --name eve >/dev/null
cp "$tmp/eveid/.kith/identity" "$tmp/eve/.kith/identity"
# The hub is gone for good.

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
# Chains on the sessions (13.3): ann and ben took cat's longer chain; cat
# kept its own over a shorter one; now all three hold the same.
for d in ann ben; do
    grep -q "lan: adopted device .*membership chain" "$tmp/$d.log" && ok || bad "$d adopted no chain"
done
! grep -q "adopted device" "$tmp/cat.log" && ok || bad "cat adopted a chain"
if command -v python3 >/dev/null; then
    [ "$(chain_ops ann)" = "$(chain_ops cat)" ] && [ "$(chain_ops ben)" = "$(chain_ops cat)" ] && ok ||
        bad "chains after the LAN: ann $(chain_ops ann), ben $(chain_ops ben), cat $(chain_ops cat)"
fi

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

# ---- a forked chain: fox joined through a copy of the hub ----
printf 'fox was here\n' >>"$tmp/fox/doc.md"
start fox d
wait_for 5 grep -q "daemon started" "$tmp/fox.log" && ok || bad "daemon fox did not start"
# Whoever connects sends its chain: the members refuse fox's (and fox
# theirs, when one of them connects to it); fox stays refused.
wait_for 10 grep -q "forks from ours" "$tmp/ann.log" "$tmp/ben.log" "$tmp/cat.log" "$tmp/fox.log" && ok ||
    bad "no member refused fox's forked chain"
wait_for 5 grep -q "refused device .*not a current member\|closing device .*not a current member" \
    "$tmp/ann.log" "$tmp/ben.log" "$tmp/cat.log" "$tmp/fox.log" && ok || bad "fox not refused"
printf 'after fox\n' >>"$tmp/ann/doc.md"
wait_for 10 same3 "${live[@]}" "after eve" "after fox" && ok || bad "'after fox' did not reach everyone"
sleep 0.5
! grep -q "after fox" "$tmp/fox/doc.md" && ok || bad "fox got a change"
for d in ann ben cat; do ! grep -q "fox was here" "$tmp/$d/doc.md" && ok || bad "fox's edit reached $d"; done
if command -v python3 >/dev/null; then
    [ "$(chain_ops ann)" = "$(chain_ops cat)" ] && ok || bad "ann's chain changed after fox"
fi

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

# ---- kith sync, no hub, no daemon of its own: the daemons over the LAN ----
k cat daemon stop >/dev/null && ok || bad "stop cat"
printf 'while cat was away\n' >>"$tmp/ben/doc.md"
wait_for 10 has_all "$tmp/ann/doc.md" "while cat was away" && ok || bad "ann did not get ben's edit"
printf 'cat via kith sync\n' >>"$tmp/cat/doc.md"
# cat comes back with a chain that is behind (its first 3 ops, as if it had
# last seen the hub before cat's own invite): a daemon it connects to (a
# larger device id) keeps its own and says so; a daemon that connects to cat
# hands it the longer chain, which cat adopts. No one's chain gets shorter.
devid() { awk '{print $2}' "$tmp/$1/.kith/identity"; }
smaller() { [ "$(printf '%s\n%s\n' "$1" "$2" | LC_ALL=C sort | head -1)" = "$1" ]; }
if command -v python3 >/dev/null; then
    python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); b=c.execute("select ops from lan_chain").fetchone()[0]
i=0
for _ in range(3): i += 4 + int.from_bytes(b[i:i+4], "big")
c.execute("update lan_chain set ops = ?", (b[:i],)); c.commit()' "$tmp/cat/.kith/sync.db"
    [ "$(chain_ops cat)" = 3 ] && ok || bad "cat's chain not cut: $(chain_ops cat)"
fi
ts=$(date +%s.%N)
ip netns exec "$pre-c" timeout 60 "$KITH" -C "$tmp/cat" sync --lan-port "$port" --timeout 10 \
    >"$tmp/cat-sync.out" 2>"$tmp/cat-sync.err"
echo "kith sync over the LAN took $(echo "$(date +%s.%N) - $ts" | bc) s: $(tr '\n' ';' <"$tmp/cat-sync.out")"
has_all "$tmp/cat/doc.md" "while cat was away" && ok || bad "kith sync did not pull over the LAN"
[ "$(grep -c '^LAN peer .*: pushed [0-9]* change' "$tmp/cat-sync.out")" = 2 ] && ok ||
    bad "kith sync does not report 2 LAN peers: $(cat "$tmp/cat-sync.out" "$tmp/cat-sync.err")"
grep -q '^LAN peer .*pulled 1 change,' "$tmp/cat-sync.out" && ok ||
    bad "kith sync does not report the change pulled: $(cat "$tmp/cat-sync.out")"
grep -q '^LAN peer .*: pushed [1-9]' "$tmp/cat-sync.out" && ok ||
    bad "kith sync does not report the change pushed: $(cat "$tmp/cat-sync.out")"
if command -v python3 >/dev/null; then
    cid=$(devid cat)
    for d in ann ben; do
        if smaller "$cid" "$(devid $d)"; then # cat connected: $d got the shorter chain
            grep -q "device ${cid:0:16}'s membership chain is behind ours" "$tmp/$d.log" && ok ||
                bad "$d did not refuse cat's shorter chain"
        fi
        [ "$(chain_ops $d)" = 5 ] && ok || bad "$d's chain changed: $(chain_ops $d) ops"
    done
    [ "$(chain_ops cat)" = 5 ] && ok || bad "cat did not adopt the longer chain back: $(chain_ops cat)"
fi
wait_for 10 has_all "$tmp/ann/doc.md" "cat via kith sync" && ok || bad "ann did not get cat's edit"
wait_for 10 has_all "$tmp/ben/doc.md" "cat via kith sync" && ok || bad "ben did not get cat's edit"
ip netns exec "$pre-c" timeout 60 "$KITH" -C "$tmp/cat" sync --lan-port "$port" --timeout 10 --json \
    >"$tmp/cat-sync.json" 2>/dev/null
grep -q '"lan": \[' "$tmp/cat-sync.json" && grep -q '"address": "10.214.0.' "$tmp/cat-sync.json" &&
    ok || bad "kith sync --json lists no LAN peer: $(cat "$tmp/cat-sync.json")"

# ---- stopping ----
for d in ann ben zed eve fox; do
    k "$d" daemon stop >/dev/null && ok || bad "stop $d"
done
t2=$(date +%s.%N)
echo "$pass passed, $fail failed ($(echo "$t2 - $t0" | bc) s with daemons)"
if [ "$fail" -ne 0 ]; then
    for d in ann ben cat eve fox; do echo "--- $d.log"; tail -25 "$tmp/$d.log"; done
fi
[ "$fail" -eq 0 ]
