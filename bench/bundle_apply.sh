#!/usr/bin/env bash
# Moving a long history to a second device through a bundle
# (docs/BENCHMARKS.md, "Workspace"): ann records N changes (one line
# appended per change, every 7th to a second file), then `bundle create
# --for` ben's summary and ben's `bundle apply` are timed, and ben's copy is
# compared with ann's. A hub on loopback is only there for the invitation.
# Usage: bench/bundle_apply.sh [BUILD_DIR|KITH_BINARY] [N]   (default build, 1500)
set -eu
K=${1:-build}
[ -d "$K" ] && K=$K/kith
KITH=$(realpath "$K")
N=${2:-1500}
T=$(mktemp -d)
HUB=
trap '[ -n "$HUB" ] && kill "$HUB" 2>/dev/null; rm -rf "$T"' EXIT
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
k() { local d=$1; shift; (cd "$T/$d" && "$KITH" "$@"); }

"$KITH" hub --listen 127.0.0.1:0 --data "$T/hubdata" >"$T/hub.out" 2>"$T/hub.log" &
HUB=$!
for _ in $(seq 100); do grep -q '^hub: ' "$T/hub.out" 2>/dev/null && break; sleep 0.05; done
read -r _ URL _ FP <"$T/hub.out"
mkdir "$T/ann" && (cd "$T/ann" && KITH_USER=ann "$KITH" init . >/dev/null)
printf 'title\n' >"$T/ann/doc.md"
printf 'x\n' >"$T/ann/other.md"
k ann status >/dev/null
k ann remote add "$URL" --fingerprint "$FP" >/dev/null
link=$(k ann invite --role writer)
(cd "$T" && "$KITH" join "$link" ben --name ben >/dev/null)
summary=$(k ben bundle summary)
for i in $(seq "$N"); do
    if [ $((i % 7)) = 0 ]; then f=other.md; else f=doc.md; fi
    echo "line $i" >>"$T/ann/$f"
    KITH_SYNC=off k ann status >/dev/null
done
t=$(date +%s%N)
k ann bundle create "$T/b.kb" --for "$summary" >/dev/null
echo "bundle create, $N changes: $(ms "$t") ms ($(stat -c %s "$T/b.kb") bytes)"
t=$(date +%s%N)
k ben bundle apply "$T/b.kb" >/dev/null
echo "bundle apply, $N changes: $(ms "$t") ms"
cmp -s "$T/ann/doc.md" "$T/ben/doc.md" && cmp -s "$T/ann/other.md" "$T/ben/other.md" ||
    { echo "bundle_apply: ben's files differ from ann's" >&2; exit 1; }
[ "$(k ben log | wc -l)" = $((N + 1)) ] || { echo "bundle_apply: ben lacks changes" >&2; exit 1; }
