#!/bin/bash
# LAN discovery for real: two network namespaces joined by a veth pair,
# one device's daemon in each, no hub. The links come up only after the
# daemons started, so the network change (netlink) is what makes them
# announce at once, and they must find each other within 2 s (beacons are
# otherwise 5 s apart). A daemon of another workspace on the same LAN and
# port hears every beacon but finds no one, and is found by no one.
#
# This test covers discovery (docs/PROTOCOL.md 13.1); the two devices are
# copies of one folder (one device id), so they open no session.
# lan_sync.sh covers sessions (13.2) between real members.
#
# Needs root and iproute2 (ip netns, veth); otherwise it says why, and
# skips.
set -uo pipefail
: "${KITH:?KITH must name the kith binary}"

skip() {
    echo "skipped: $*"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to make network namespaces"
command -v ip >/dev/null || skip "iproute2 ('ip') is not installed"

tmp=$(mktemp -d)
nsa=kith-lan-$$-a
nsb=kith-lan-$$-b
va=vk$$a
vb=vk$$b
port=$((40000 + $$ % 20000))
cleanup() {
    local rc=$?
    set +e # the veth end went with its namespace: its delete may fail
    for ns in "$nsa" "$nsb"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    ip link del "$va" 2>/dev/null
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
ip netns add "$nsa" 2>"$tmp/err" || skip "cannot make a network namespace: $(cat "$tmp/err")"
ip netns add "$nsb" 2>"$tmp/err" || skip "cannot make a network namespace: $(cat "$tmp/err")"
ip link add "$va" type veth peer name "$vb" 2>"$tmp/err" ||
    skip "cannot make a veth pair: $(cat "$tmp/err")"
ip link set "$va" netns "$nsa" && ip link set "$vb" netns "$nsb" ||
    skip "cannot move the veth ends into the namespaces"
set -e

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
wait_for() {
    local n=$(($1 * 50))
    shift
    for _ in $(seq "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.02
    done
    return 1
}
in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# Two devices of one workspace. Until invitations work without a hub, the
# second device is a copy of the first's folder: the same workspace id and
# key (what discovery needs); a third folder is another workspace.
"$KITH" init "$tmp/a" --name ann >/dev/null
echo "shared" >"$tmp/a/notes.md"
"$KITH" -C "$tmp/a" status >/dev/null
cp -a "$tmp/a" "$tmp/b"
"$KITH" init "$tmp/c" --name cy >/dev/null

in_ns "$nsa" ip link set lo up
in_ns "$nsb" ip link set lo up
in_ns "$nsa" "$KITH" -C "$tmp/a" daemon --lan-port "$port" 2>"$tmp/log.a" &
in_ns "$nsb" "$KITH" -C "$tmp/b" daemon --lan-port "$port" 2>"$tmp/log.b" &
in_ns "$nsb" "$KITH" -C "$tmp/c" daemon --lan-port "$port" 2>"$tmp/log.c" &
for l in a b c; do
    wait_for 5 grep -q "daemon started" "$tmp/log.$l" && ok || bad "daemon $l did not start"
done
sleep 0.5

# the network appears
in_ns "$nsa" ip addr add 10.213.0.1/24 dev "$va"
in_ns "$nsb" ip addr add 10.213.0.2/24 dev "$vb"
in_ns "$nsa" ip link set "$va" up
in_ns "$nsb" ip link set "$vb" up
wait_for 2 grep -q "network changed" "$tmp/log.a" && ok || bad "no netlink notice in a"
wait_for 2 grep -q "lan: found device .* at 10.213.0.2" "$tmp/log.a" && ok ||
    bad "a did not find b within 2 s of the network change"
wait_for 2 grep -q "lan: found device .* at 10.213.0.1" "$tmp/log.b" && ok ||
    bad "b did not find a within 2 s of the network change"
sleep 1.5 # several more beacons from everyone
[ "$(grep -c "lan: found device" "$tmp/log.a")" = 1 ] && ok || bad "a found more than b"
! grep -q "lan: found device" "$tmp/log.c" && ok || bad "c (another workspace) found someone"

# the beacons on the wire, caught by a plain listener in b's namespace:
# 158 bytes, the tag of docs/PROTOCOL.md 13.1 recomputed here from the
# workspace key, and neither the workspace id nor a device id in clear
if command -v python3 >/dev/null; then
    cat >"$tmp/catch.py" <<'PY'
import hashlib, socket, sqlite3, struct, sys, time
port, kdir = int(sys.argv[1]), sys.argv[2]
key = bytes.fromhex(open(kdir + "/workspace-key").read().split()[3])
wsid = bytes.fromhex(dict(sqlite3.connect(kdir + "/store.db").execute("select * from meta"))["workspace"])
device = bytes.fromhex(open(kdir + "/identity").read().split()[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             socket.inet_aton("239.255.75.73") + socket.inet_aton("10.213.0.2"))
s.settimeout(8)
ktag = hashlib.blake2b(b"kith-lan-tag-v1" + wsid, key=key, digest_size=32).digest()
seen = 0
while seen < 2:
    d, addr = s.recvfrom(2048)
    if addr[0] != "10.213.0.1":
        continue
    seen += 1
    e = struct.unpack(">Q", d[4:12])[0]
    tag = hashlib.blake2b(struct.pack(">Q", e), key=ktag, digest_size=16).digest()
    assert len(d) == 158, len(d)
    assert d[:4] == b"kLB\x01", d[:4]
    assert abs(e - int(time.time()) // 600) <= 1, e
    assert d[12:28] == tag, "tag"
    assert wsid not in d and device not in d, "id in clear"
print("beacons ok")
PY
    in_ns "$nsb" timeout 25 python3 "$tmp/catch.py" "$port" "$tmp/a/.kith" >"$tmp/catch" 2>&1 || true
    grep -q "beacons ok" "$tmp/catch" && ok || bad "beacon on the wire: $(tail -2 "$tmp/catch")"
fi

# stopping
for l in a b c; do
    ns=$nsa
    [ "$l" = a ] || ns=$nsb
    in_ns "$ns" "$KITH" -C "$tmp/$l" daemon stop >/dev/null && ok || bad "stop $l"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
