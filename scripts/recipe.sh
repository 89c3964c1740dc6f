#!/usr/bin/env bash
# The whole OneBit recipe on shipped text, from nothing to a row group of the
# quality table: train-teacher -> svid -> distill -> export -> quality
# (bench-results/quality.json, keyed by recipe) and the teacher report
# (bench-results/teacher-<recipe>.json).
#
#   scripts/recipe.sh shakespeare-char|wikitext-bpe [RUN_DIR]      (or: make recipe RECIPE=...)
#
# Environment: KD_STEPS (distillation steps; default 400 for shakespeare-char,
# 800 for wikitext-bpe), QUALITY_CHUNKS (64-token chunks evaluated, default 300),
# BIN_DIR (use already-built `onebit` and `quality` binaries from there instead
# of building them in release), REUSE_TEACHER (an already-trained teacher
# directory: skip train-teacher), RAYON_NUM_THREADS (default 1: the figures in
# bench-results were made with one thread), REPORT_DIR (where the teacher report and
# the quality table go; default bench-results).
set -euo pipefail
cd "$(dirname "$0")/.."

recipe=${1:?usage: scripts/recipe.sh shakespeare-char|wikitext-bpe [RUN_DIR]}
run=${2:-build/runs/$recipe}
data_root=${DATA:-../shared/data}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}

case $recipe in
  shakespeare-char)
    train=$data_root/tinyshakespeare/input.txt; eval=$train; split=val10; name=shakespeare_char
    kd_data=(--data "$train"); kd_steps=${KD_STEPS:-400} ;;
  wikitext-bpe)
    train=$data_root/wikitext-2/valid.txt; eval=$data_root/wikitext-2/test.txt; split=all; name=wikitext_bpe
    kd_data=(--data "$train" --val-data "$eval"); kd_steps=${KD_STEPS:-800} ;;
  *) echo "recipe.sh: unknown recipe '$recipe' (expected shakespeare-char or wikitext-bpe)" >&2; exit 2 ;;
esac
for f in "$train" "$eval"; do
  [ -f "$f" ] || { echo "recipe.sh: $f: not found (the shipped text lives in ../shared/data)" >&2; exit 2; }
done

if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release -q -p onebit --bin onebit -p onebit-trainer --example quality
  BIN_DIR=${CARGO_TARGET_DIR:-target}/release
  quality=$BIN_DIR/examples/quality
else
  quality=$BIN_DIR/examples/quality
fi
onebit=$BIN_DIR/onebit
reports=${REPORT_DIR:-bench-results}
mkdir -p "$run" "$reports"

if [ -n "${REUSE_TEACHER:-}" ]; then
  echo "== teacher: reusing $REUSE_TEACHER"
  [ -f "$REUSE_TEACHER/config.json" ] || { echo "recipe.sh: $REUSE_TEACHER has no config.json" >&2; exit 2; }
  teacher=$REUSE_TEACHER
else
  teacher=$run/teacher
  echo "== teacher ($recipe) -> $teacher"
  "$onebit" train-teacher --recipe "$recipe" --out "$teacher" --eval-batches 50 \
    --report "$reports/teacher-$recipe.json"
fi
echo "== SVID (nmf and svd)"
"$onebit" svid --teacher "$teacher" --out "$run/student-svid"
"$onebit" svid --teacher "$teacher" --out "$run/student-svid-svd" --method svd > "$run/svid-svd.log"
echo "== distillation, $kd_steps steps"
"$onebit" distill --teacher "$teacher" --student "$run/student-svid" "${kd_data[@]}" --out "$run/student-kd" \
  --steps "$kd_steps" --batch 12 --context 64 --lr 1e-3 --min-lr 1e-4 --warmup 40 \
  --eval-batches 10 --eval-every 100 --checkpoint-every 100 --report "$run/distill-report.json"
echo "== export"
"$onebit" export --student "$run/student-kd" --out "$run/model.onebit"
cp "$teacher/tokenizer.json" "$run/tokenizer.json"
echo "== quality table ($name)"
"$quality" --teacher "$teacher" --svid "$run/student-svid" --kd "$run/student-kd" \
  --data "$eval" --split "$split" --seq-len 64 --max-chunks "${QUALITY_CHUNKS:-300}" \
  --onebit "$run/model.onebit" --name "$name" --out "$reports/quality.json"
