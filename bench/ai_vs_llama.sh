#!/usr/bin/env bash
# Issue 5's side-by-side: kith and llama.cpp on the same GGUF files, and the
# machine's read bandwidth, measured in the same interleaved rounds, so that
# a shared machine's swings hit all three alike. Prints one line per
# measurement while it runs, then a table of medians over the rounds:
# prompt and generation tokens/s of both, kith/llama.cpp, and generation as
# a share of the bandwidth ceiling (read bandwidth / model bytes). Like
# llama-bench's pp and tg tests, kith's prompt figure is a P-token prompt and
# its generation figure N tokens generated from an empty context (one token
# in), so the generation figures of both leave out attention over a prompt.
#
#   bench/ai_vs_llama.sh BUILD MODEL.gguf...
#   env: ROUNDS (3), THREADS ("1 2"), P (128 prompt tokens), N (64 generated),
#        RUNS (3, each engine's own repetitions), LLAMA_BENCH (llama-bench
#        binary; without it only kith and the bandwidth are measured)
#
# Random-weight models of issue 5's shape: `BUILD/bench_make_random_gguf OUT
# --type Q8_0|Q4_0|F16`, then `BUILD/kith ai quantize F16.gguf OUT Q4_K_M`.
set -eu
BUILD=${1:?usage: bench/ai_vs_llama.sh BUILD MODEL.gguf...}
shift
[ $# -gt 0 ] || { echo "usage: bench/ai_vs_llama.sh BUILD MODEL.gguf..." >&2; exit 2; }
ROUNDS=${ROUNDS:-3} THREADS=${THREADS:-1 2} P=${P:-128} N=${N:-64} RUNS=${RUNS:-3}
LLAMA_BENCH=${LLAMA_BENCH:-}
for m in "$@"; do [ -r "$m" ] || { echo "ai_vs_llama: cannot read $m" >&2; exit 2; }; done
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

# llama-bench's CSV: the avg_ts of the pp row and of the tg row, by header name
llama_figures() {
    python3 -c '
import csv, sys
pp = tg = "nan"
for r in csv.DictReader(sys.stdin):
    if int(r["n_prompt"]) > 0: pp = r["avg_ts"]
    if int(r["n_gen"]) > 0: tg = r["avg_ts"]
print(pp, tg)'
}
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

for r in $(seq "$ROUNDS"); do
    for m in "$@"; do
        name=$(basename "$m" .gguf)
        bw=$("$BUILD/bench_membw" "$m" 3)
        for k in 1t 2t; do
            v=$(echo "$bw" | json_field "read_gbs_$k")
            echo "$r $name ${k%t} bw $v" | tee -a "$raw"
        done
        for t in $THREADS; do
            # as llama-bench does: the prompt alone, and generation from an
            # empty context (after one token), each its own measurement
            jp=$("$BUILD/kith" ai bench --model "$m" --threads "$t" -p "$P" -n 1 --runs "$RUNS" --json)
            jg=$("$BUILD/kith" ai bench --model "$m" --threads "$t" -p 1 -n "$N" --runs "$RUNS" --json)
            echo "$r $name $t kith $(echo "$jp" | json_field pp_tps) $(echo "$jg" | json_field tg_tps) $(echo "$jp" | json_field model_bytes)" | tee -a "$raw"
            if [ -n "$LLAMA_BENCH" ]; then
                l=$("$LLAMA_BENCH" -m "$m" -p "$P" -n "$N" -t "$t" -r "$RUNS" -o csv 2>/dev/null | llama_figures)
                echo "$r $name $t llama $l" | tee -a "$raw"
            fi
        done
    done
done

python3 - "$raw" <<'EOF'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
med = lambda xs: st.median(xs) if xs else float("nan")
models = list(dict.fromkeys(r[1] for r in rows))
print("\nmedians over %d rounds (tokens/s; bandwidth GB/s)" % len(set(r[0] for r in rows)))
print("| model | threads | prompt llama.cpp | prompt kith | ratio | gen llama.cpp | gen kith | ratio | read GB/s | gen ceiling | kith % of ceiling | llama.cpp % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for m in models:
    for t in sorted(set(r[2] for r in rows if r[1] == m and r[3] == "kith")):
        k = [r for r in rows if r[1] == m and r[2] == t and r[3] == "kith"]
        l = [r for r in rows if r[1] == m and r[2] == t and r[3] == "llama"]
        bw = med([float(r[4]) for r in rows if r[1] == m and r[2] == t and r[3] == "bw"])
        size = float(k[0][6])
        kp, kg = med([float(r[4]) for r in k]), med([float(r[5]) for r in k])
        lp, lg = med([float(r[4]) for r in l]), med([float(r[5]) for r in l])
        ceil = bw * 1e9 / size
        print("| %s | %s | %.0f | %.0f | %.2f | %.1f | %.1f | %.2f | %.1f | %.0f | %.0f%% | %.0f%% |" % (
            m, t, lp, kp, kp / lp if l else float("nan"), lg, kg, kg / lg if l else float("nan"),
            bw, ceil, 100 * kg / ceil, 100 * lg / ceil if l else float("nan")))
EOF
