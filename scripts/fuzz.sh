#!/usr/bin/env bash
# make fuzz: run every cargo-fuzz target for SECONDS each, one after another
# (one libFuzzer process at a time), logging to fuzz/logs/TARGET.log, then
# write the figures from the logs (scripts/fuzz_report.py; FUZZ_REPORT names the file).
# Usage: scripts/fuzz.sh SECONDS TARGET...   (docs/fuzzing.md)
# FUZZ_RUNS=N also stops each target after N executions (a campaign of 10^6 each).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=$1
shift
# -timeout is long because a run may be paused (SIGSTOP) on a shared machine.
# Limits that make an unjustified allocation a crash: no input is larger than
# MAX_LEN bytes, so none justifies a single allocation of MALLOC_LIMIT_MB.
MAX_LEN=${FUZZ_MAX_LEN:-65536}
MALLOC_LIMIT_MB=${FUZZ_MALLOC_LIMIT_MB:-256}
RSS_LIMIT_MB=${FUZZ_RSS_LIMIT_MB:-1024}
# FUZZ_BUILD_WRAPPER: e.g. `flock /tmp/lock`, so builds on a shared machine take turns.
${FUZZ_BUILD_WRAPPER:-} cargo +nightly fuzz build || exit 1
mkdir -p fuzz/logs
status=0
for t in "$@"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  flags=(-max_total_time="$seconds" -max_len="$MAX_LEN" -malloc_limit_mb="$MALLOC_LIMIT_MB"
         -rss_limit_mb="$RSS_LIMIT_MB" -timeout=300 -print_final_stats=1)
  [ -n "${FUZZ_RUNS:-}" ] && flags+=(-runs="$FUZZ_RUNS")
  echo "fuzz: $t for ${seconds}s (log: fuzz/logs/$t.log)"
  {
    echo "command: cargo +nightly fuzz run $t fuzz/corpus/$t fuzz/seeds/$t -- ${flags[*]}"
    echo "loadavg-start: $(cat /proc/loadavg)"
  } > "fuzz/logs/$t.log"
  # One process, in the foreground (no -jobs/-workers: those fork workers that log elsewhere).
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- "${flags[@]}" >> "fuzz/logs/$t.log" 2>&1
  rc=$?
  echo "loadavg-end: $(cat /proc/loadavg)" >> "fuzz/logs/$t.log"
  echo "exit: $rc" >> "fuzz/logs/$t.log"
  grep -E "^#[0-9]+ +DONE|^==[0-9]+== ERROR|panicked at|SUMMARY" "fuzz/logs/$t.log" | tail -3
  [ "$rc" = 0 ] || { echo "fuzz: $t found a crash (input under fuzz/artifacts/$t/)"; status=1; }
done
python3 scripts/fuzz_report.py "$seconds" "$@" || status=1
exit $status
