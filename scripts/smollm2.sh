#!/usr/bin/env bash
# OneBit on SmolLM2-135M-Instruct (issue 12): SVID, distillation, export, and the
# WikiText-2 test evaluation at sequence length 2048, every step resumable
# (rerun the same command to continue; finished steps are skipped).
#
#   scripts/smollm2.sh recipe     SVID (nmf and the naive baseline) -> official KD -> export
#   scripts/smollm2.sh eval       perplexity rows (resumable per 2048-token chunk)
#   scripts/smollm2.sh report     bench-results/smollm2.json + .svg from what is measured
#   scripts/smollm2.sh hardware   one 256-token chunk on the Verilated ecp5 array (about 6 min)
#
# Environment: RUN (default build/smollm2/run), DATA (../shared/data), BIN (a built
# `onebit`; default: cargo build --release), KD_STEPS (40), KD_BATCH (2),
# KD_CONTEXT (512: 2048 ran out of memory on the 24 GiB machine), PREFIX_CHUNKS (64),
# ROWS (the eval rows to run, default all: teacher naive svid kd_float kd_reference).
# Data: ../shared/data/wikitext-2 is the tokenized WikiText-2 release (with <unk>),
# not the raw one the papers evaluate on: figures are not comparable with theirs.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:?usage: scripts/smollm2.sh recipe|eval|report|hardware}
run=${RUN:-build/smollm2/run}
data_root=${DATA:-../shared/data}
gguf=build/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
test_txt=$data_root/wikitext-2/test.txt
valid_txt=$data_root/wikitext-2/valid.txt
prefix=${PREFIX_CHUNKS:-64}
# One thread each: the machine has 2 cores and the runs share it (docs/trainer.md, Speed).
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
for f in "$gguf" "$test_txt" "$valid_txt"; do
  [ -f "$f" ] || { echo "smollm2.sh: $f: not found (make smollm2; the shipped text lives in ../shared/data)" >&2; exit 2; }
done
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p onebit --bin onebit -p onebit-trainer --example smollm2_report
  BIN=${CARGO_TARGET_DIR:-target}/release
fi
onebit=$BIN/onebit
mkdir -p "$run/files" "$run/eval" bench-results
run_nice() { nice -n 10 "$@"; }

recipe() {
  for m in svid:nmf naive:naive; do
    name=${m%%:*}; method=${m##*:}
    if [ ! -f "$run/student-$name/student.safetensors" ]; then
      echo "== SVID ($method) of all 210 linears -> $run/student-$name"
      run_nice "$onebit" svid --teacher "$gguf" --out "$run/student-$name" --method "$method" --json > "$run/svid-$method.json"
    fi
    if [ ! -f "$run/files/$name.onebit.safetensors" ]; then
      run_nice "$onebit" export --student "$run/student-$name" --out "$run/files/$name.onebit.safetensors" --json > "$run/files/$name.export.json"
    fi
  done
  if [ ! -f "$run/kd/student.safetensors" ]; then
    resume=(); [ -f "$run/kd/checkpoint.safetensors" ] && resume=(--resume)
    echo "== distillation, official recipe, ${KD_STEPS:-40} steps of ${KD_BATCH:-2} x ${KD_CONTEXT:-512} tokens ${resume[*]}"
    run_nice "$onebit" distill --recipe official --teacher "$gguf" --student "$run/student-svid" \
      --data "$valid_txt" --out "$run/kd" --steps "${KD_STEPS:-40}" --batch "${KD_BATCH:-2}" --context "${KD_CONTEXT:-512}" \
      --warmup 10 --eval-batches 2 --eval-every 20 --checkpoint-every 10 --report "$run/kd-report.json" "${resume[@]}"
  fi
  if [ ! -f "$run/files/kd.onebit.safetensors" ]; then
    echo "== export"
    run_nice "$onebit" export --student "$run/kd" --out "$run/files/kd.onebit.safetensors" --json > "$run/files/kd.export.json"
  fi
}

# eval_row KEY MODEL BACKEND [MAX_CHUNKS]: a resumable `onebit ppl` into $run/eval/KEY.*
eval_row() {
  local key=$1 model=$2 backend=$3 max=${4:-}
  [ -e "$model" ] || { echo "smollm2.sh: $model: not made yet (run: scripts/smollm2.sh recipe)" >&2; return 1; }
  local args=(ppl --model "$model" --data "$test_txt" --backend "$backend" --seq-len 2048 --state "$run/eval/$key.state.json" --json)
  [ -n "$max" ] && args+=(--max-chunks "$max")
  echo "== $key: $onebit ${args[*]}"
  run_nice "$onebit" "${args[@]}" > "$run/eval/$key.json.tmp"
  mv "$run/eval/$key.json.tmp" "$run/eval/$key.json"
}

eval_rows() {
  for key in ${ROWS:-teacher naive svid kd_float kd_reference}; do
    case $key in
      teacher) eval_row teacher "$gguf" float ;;
      naive) eval_row naive "$run/files/naive.onebit.safetensors" float "$prefix" ;;
      svid) eval_row svid "$run/files/svid.onebit.safetensors" float "$prefix" ;;
      # The final 1-bit model: the prefix first (so every row compares on it), then the whole split.
      kd_float) eval_row kd_float "$run/files/kd.onebit.safetensors" float "$prefix"
                eval_row kd_float "$run/files/kd.onebit.safetensors" float ;;
      kd_reference) eval_row kd_reference "$run/files/kd.onebit.safetensors" reference "$prefix"
                    eval_row kd_reference "$run/files/kd.onebit.safetensors" reference ;;
      *) echo "smollm2.sh: unknown row $key" >&2; exit 2 ;;
    esac
  done
}

case $what in
  recipe) recipe ;;
  eval) eval_rows ;;
  report)
    cmd="scripts/smollm2.sh report"
    ${BIN:-target/release}/examples/smollm2_report --run "$run" --gguf "$gguf" --prefix-chunks "$prefix" \
      --out bench-results/smollm2.json --command "$cmd" ;;
  hardware)
    # Needs the ecp5 model verilated into the build (the default is sim16,ice40,t6x4); about 6 minutes of simulation.
    ONEBIT_SIM_PRESETS=sim16,ice40,t6x4,ecp5 cargo build --release -q -p onebit --bin onebit
    for b in reference hardware; do
      run_nice "$onebit" ppl --model "$run/files/kd.onebit.safetensors" --data "$test_txt" --backend "$b" --preset ecp5 \
        --seq-len 256 --max-chunks 1 --json > "$run/eval/hardware-$b.json"
    done ;;
  *) echo "usage: scripts/smollm2.sh recipe|eval|report|hardware" >&2; exit 2 ;;
esac
