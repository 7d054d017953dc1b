#!/usr/bin/env bash
# Workspace benchmarks, kith and git side by side on the same files
# (docs/BENCHMARKS.md, "Workspace"):
#   1. `kith status` / `git status` on FILES files of SIZE bytes with nothing
#      changed (default 10,000 x 10 KB = 100 MB);
#   2. recording a one-character edit in a 1 MB file: in-process
#      (bench_ws_edit, fsync on and off) and as a command (`kith status`
#      vs `git commit -a`);
#   3. `kith cat` of a file whose history is the automerge-paper trace, and
#      the store's size against the engine's encoding (bench_ws_trace).
# Usage: bench/ws_bench.sh [BUILD_DIR]   env: FILES SIZE RUNS EVERY TMPDIR
set -eu
BUILD=${1:-build}
KITH=$(realpath "$BUILD/kith")
SRC=$(cd "$(dirname "$0")/.." && pwd)
FILES=${FILES:-10000}
SIZE=${SIZE:-10000}
RUNS=${RUNS:-7}
EVERY=${EVERY:-250}
work=$(mktemp -d "${TMPDIR:-/tmp}/kith-wsbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@example.com GIT_COMMITTER_NAME=bench \
    GIT_COMMITTER_EMAIL=b@example.com

# median_ms CMD...: runs CMD RUNS times, prints the median wall time in ms.
median_ms() {
    local t=() i t0 t1
    for ((i = 0; i < RUNS; i++)); do
        t0=${EPOCHREALTIME/./}
        "$@" >/dev/null 2>&1
        t1=${EPOCHREALTIME/./}
        t+=($((t1 - t0)))
    done
    printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}

echo "== 1. status with nothing changed: $FILES files x $SIZE bytes"
w="$work/many"
mkdir -p "$w"
awk -v dir="$w" -v n="$FILES" -v size="$SIZE" 'BEGIN {
    for (i = 0; i < n; i++) {
        d = sprintf("%s/d%03d", dir, i % 100)
        if (i < 100) system("mkdir -p " d)
        f = sprintf("%s/f%05d.md", d, i)
        len = 0
        for (k = 0; len < size; k++) {
            line = sprintf("file %d line %d: the quick brown fox jumps over the lazy dog", i, k)
            print line > f
            len += length(line) + 1
        }
        close(f)
    }
}'
find "$w" -type f -exec touch -d '1 hour ago' {} +
"$KITH" init "$w" --name Bench >/dev/null
t0=${EPOCHREALTIME/./}
"$KITH" -C "$w" status >/dev/null
t1=${EPOCHREALTIME/./}
echo "kith: first status (records $(du -sh --exclude=.kith "$w" | cut -f1)) $(((t1 - t0) / 1000)) ms"
(cd "$w" && git init -q && git add -A && git commit -qm init)
git -C "$w" status >/dev/null
echo "kith status, nothing changed: $(median_ms "$KITH" -C "$w" status) ms (median of $RUNS)"
echo "git status,  nothing changed: $(median_ms git -C "$w" status) ms (median of $RUNS)"
rm -rf "$w"

echo "== 2. one-character edit in a 1 MB file"
"$BUILD/bench_ws_edit" "$work/edit" 1048576 21
e="$work/edit"
(cd "$e" && git init -q && git add big.md && git commit -qm init)
edit_once() {
    # flips one character in the middle of big.md
    local c
    c=$(dd if="$e/big.md" bs=1 skip=524288 count=1 status=none)
    [ "$c" = x ] && c=y || c=x
    printf '%s' "$c" | dd of="$e/big.md" bs=1 seek=524288 conv=notrunc status=none
}
kith_edit() { edit_once && "$KITH" -C "$e" status; }
git_edit() { edit_once && git -C "$e" commit -qam edit; }
echo "kith status after the edit (whole command): $(median_ms kith_edit) ms (median of $RUNS, includes the edit)"
echo "git commit -a after the edit (whole command): $(median_ms git_edit) ms (median of $RUNS, includes the edit)"

echo "== 3. history of the automerge-paper trace"
p="$work/paper"
"$BUILD/bench_ws_trace" "$SRC/tests/data/traces/automerge-paper.json.gz" "$p" "$EVERY"
echo "kith cat paper.md: $(median_ms "$KITH" -C "$p" cat paper.md) ms (median of $RUNS)"
first=$("$KITH" -C "$p" log --json | grep '"id"' | sed -n '500p' | cut -d'"' -f4)
echo "kith cat paper.md --at (a change half way): $(median_ms "$KITH" -C "$p" cat paper.md --at "$first") ms"
echo "kith blame paper.md: $(median_ms "$KITH" -C "$p" blame paper.md) ms"
