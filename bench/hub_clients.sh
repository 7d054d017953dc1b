#!/usr/bin/env bash
# One `kith hub` holding many connected member clients on loopback (issue 4:
# 1,000 clients in under 200 MB RSS). Starts the hub, raises the open-file
# limit (each client is one socket here and one in the hub), runs
# bench_hub_clients (bench/hub_clients.c) and prints the hub's RSS with all
# connected. Not a ctest test: it prints figures.
#
# usage: bench/hub_clients.sh [CLIENTS [WORKSPACES [PUSHERS]]]   (default 1000 10 all)
# One workspace of 1,000 members, 100 pushes a round (99,900 relays):
#   bench/hub_clients.sh 1000 1 100
# BUILD names the build folder (default build); KEEP=1 keeps the hub's data.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
KITH=${KITH:-$BUILD/kith}
BENCH=${BENCH:-$BUILD/bench_hub_clients}
N=${1:-1000}
W=${2:-10}
P=${3:-$N}
for b in "$KITH" "$BENCH"; do
    [ -x "$b" ] || { echo "hub_clients: no $b (build first, or set BUILD=)"; exit 1; }
done
need=$((2 * N + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    ulimit -n "$need" 2>/dev/null || {
        echo "hub_clients: need $need open files, the limit is $(ulimit -n) (hard $(ulimit -Hn));"
        echo "raise it (ulimit -n $need as root, or /etc/security/limits.conf) or run fewer clients"
        exit 1
    }
fi
T=$(mktemp -d /tmp/kith-hub-clients-XXXXXX)
HUBPID=
cleanup() {
    [ -n "$HUBPID" ] && kill "$HUBPID" 2>/dev/null && wait "$HUBPID" 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
"$KITH" hub --listen 127.0.0.1:0 --data "$T/hub" >"$T/hub.out" 2>"$T/hub.log" &
HUBPID=$!
for _ in $(seq 200); do grep -q '^hub: ' "$T/hub.out" 2>/dev/null && break; sleep 0.05; done
read -r _ URL _ FP <"$T/hub.out" || { echo "hub did not start"; cat "$T/hub.log"; exit 1; }
echo "hub pid $HUBPID at $URL; $N clients in $W workspaces, $P pushes a round; open-file limit $(ulimit -n)"
"$BENCH" "$URL" "$FP" "$HUBPID" "$N" "$W" "$P"
rc=$?
[ $rc = 0 ] || { echo "hub log tail:"; tail -5 "$T/hub.log"; }
exit $rc
