#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in build-fuzz/
# and runs each for a fixed number of executions from seed corpora made of the
# bundled catalogs, examples and bad-input files. Any crash, sanitizer report,
# leak or exception other than moeplan::Error fails the script (exit 1) and
# leaves the reproducer in build-fuzz/crashes/<target>/.
#
#   scripts/fuzz.sh              # CI: FUZZ_RUNS executions per target (default 2000)
#   FUZZ_RUNS=200000 FUZZ_CATALOG_RUNS=20000 scripts/fuzz.sh   # a longer run (docs/reliability.md)
#   (fuzz_catalog reloads every catalog file per input: about 25 executions a second)
#
# Reproduce a crash: build-fuzz/fuzz/<target> build-fuzz/crashes/<target>/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${FUZZ_RUNS:-2000}
catalog_runs=${FUZZ_CATALOG_RUNS:-$runs}
jobs=${FUZZ_BUILD_JOBS:-2}
build=${FUZZ_BUILD_DIR:-build-fuzz}

# -O1 and line tables only: sanitizer builds are slow to compile, and line
# numbers are all a stack trace needs.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" \
  -DCMAKE_CXX_COMPILER=clang++ -DMOEPLAN_FUZZ=ON -DMOEPLAN_BUILD_TESTS=OFF \
  -DMOEPLAN_WITH_CUDA=OFF -DMOEPLAN_WERROR=OFF \
  ${CCACHE_DIR:+-DCMAKE_CXX_COMPILER_LAUNCHER=ccache} >/dev/null
targets=(fuzz_scenario fuzz_plan_scenario fuzz_calibration fuzz_benchmarks fuzz_catalog fuzz_pilot)
[[ -f probe/src/calibration_writer.cpp ]] && targets+=(fuzz_probe_log)
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

# Seed corpora: copies, so what the fuzzer adds never lands in the source tree.
seed() {  # seed TARGET FILES...
  local dir="$build/corpus/$1"
  shift
  rm -rf "$dir" && mkdir -p "$dir"
  for f in "$@"; do [[ -f $f ]] && cp "$f" "$dir/"; done
  return 0
}
seed fuzz_scenario examples/seed*.json tests/bad-inputs/files/*.json
seed fuzz_plan_scenario examples/plan-*.json tests/bad-inputs/files/plan-*.json
seed fuzz_calibration tests/bad-inputs/files/cal-*.json fuzz/seeds/calibration-*.json
# published.csv only: the 1,040-row InferenceX study file would make every run a validation.
seed fuzz_benchmarks data/benchmarks/published.csv tests/bad-inputs/files/*.csv
seed fuzz_pilot tests/data/pilot-*.json
# Catalog inputs: first byte picks the file (order in fuzz_catalog.cpp).
mkdir -p "$build/corpus/fuzz_catalog" && rm -f "$build/corpus/fuzz_catalog"/*
i=0
for f in models devices precisions engines prices sites fx; do
  { printf "\\x$(printf %02x $i)"; cat "data/$f.json"; } >"$build/corpus/fuzz_catalog/$f"
  i=$((i + 1))
done
seed fuzz_probe_log fuzz/seeds/probe-log-*.jsonl

summary=$build/fuzz-summary.txt
: >"$summary"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$build/crashes/$t"
  log=$build/$t.log
  # -rss_limit_mb: the catalog copy and ASan shadow; -max_len: catalogs are ~100 kB.
  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/fuzz/$t" -runs="$([[ $t == fuzz_catalog ]] && echo "$catalog_runs" || echo "$runs")" -max_len=262144 -rss_limit_mb=4096 -timeout=30 \
    -artifact_prefix="$build/crashes/$t/" "$build/corpus/$t" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
  fi
  execs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o '[0-9][0-9]*' | head -1 || true)
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o '[0-9][0-9]*' | tail -1 || true)
  printf '%-20s %-6s runs=%s seconds=%s\n' "$t" "$result" "${execs:-?}" "${secs:-?}" | tee -a "$summary"
  [[ $result == ok ]] || tail -40 "$log"
done
exit $status
