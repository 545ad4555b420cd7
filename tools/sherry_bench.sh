#!/bin/sh
# Sherry benchmark (docs/PERF.md, section "Sherry"): the same 3:4 ternary weights stored as
# SHERRY, STQ1_0, TL2 and I2_S, decode tg128 / prefill pp128 at 1 and 2 threads with
# `tern bench`, and bitnet.cpp's I2_S on the same I2_S file with `tern compare`.
#
# usage: tools/sherry_bench.sh OUTDIR [SHAPE ...]      (shapes: large 2b4t 3b; default all)
# env:   TERN (default target/release/tern), BITNET_CPP (default /work/bitnet-build),
#        REPS (timed repetitions, default 2), THREADS (default 1,2)
# Then: python3 tools/sherry_collect.py OUTDIR > OUTDIR/results.csv
#       python3 tools/plot_tps_bpw.py OUTDIR/results.csv docs/sherry_tps_bpw.svg
set -eu
T=${TERN:-target/release/tern}
BITNET=${BITNET_CPP:-/work/bitnet-build}
REPS=${REPS:-2}
THREADS=${THREADS:-1,2}
OUT=$1
shift
SHAPES=${*:-large 2b4t 3b}
mkdir -p "$OUT"
for s in $SHAPES; do
  [ -f "$OUT/$s-sherry.gguf" ] || "$T" synth "$OUT/$s-sherry.gguf" --shape "$s" --type sherry --quiet
  for ty in i2_s tl2 stq1_0; do
    [ -f "$OUT/$s-$ty.gguf" ] || "$T" quantize "$OUT/$s-sherry.gguf" "$OUT/$s-$ty.gguf" --type "$ty" \
      > "$OUT/$s-$ty.quantize.txt" 2>&1 || echo "$s: no $ty ($(tail -1 "$OUT/$s-$ty.quantize.txt"))"
  done
  for ty in sherry i2_s tl2 stq1_0; do
    f="$OUT/$s-$ty.gguf"
    [ -f "$f" ] || continue
    "$T" inspect "$f" --json > "$OUT/$s-$ty.inspect.json"
    "$T" bench -m "$f" -p 128 -n 128 -t "$THREADS" -r "$REPS" -o json > "$OUT/$s-$ty.bench.json"
  done
  "$T" compare --bitnet-cpp "$BITNET" -m "$OUT/$s-i2_s.gguf" -t "$THREADS" -r "$REPS" -p 128 -n 128 \
    --no-logits --json "$OUT/$s-compare.json" --svg "$OUT/$s-compare.svg" > "$OUT/$s-compare.txt"
done
