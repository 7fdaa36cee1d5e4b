#!/usr/bin/env bash
# scripts/fuzz.sh — `make fuzz`: build the libFuzzer targets of tests/fuzz/ with Debian's clang (ASan + UBSan) into
# build-fuzz/ and run each for FUZZ_SECONDS seconds (default 60), starting from its seed corpus in
# tests/fuzz/corpus/NAME/. New inputs go to build-fuzz/corpus/NAME/ (the seeds in the repository are not touched);
# a crash, leak, UB or timeout leaves its input in build-fuzz/artifacts/ and fails the run.
#   FUZZ_SECONDS=N     seconds per target
#   FUZZ_TARGETS="json diff"   only these targets (names without the fuzz_ prefix)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh fuzz
seconds=${FUZZ_SECONDS:-60}
mkdir -p build-fuzz
if ! CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMRGATE_FUZZ=ON >build-fuzz/cmake.log 2>&1; then
  cat build-fuzz/cmake.log >&2
  exit 1
fi
if ! cmake --build build-fuzz -j"$(nproc)" --target fuzzers >build-fuzz/build.log 2>&1; then
  grep -E 'error|Error' build-fuzz/build.log >&2 || tail -n 40 build-fuzz/build.log >&2
  exit 1
fi
targets=${FUZZ_TARGETS:-$(cd tests/fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in $targets; do
  work=build-fuzz/corpus/$t
  mkdir -p "$work" build-fuzz/artifacts
  echo "fuzz $t: ${seconds}s"
  if ! build-fuzz/tests/fuzz/fuzz_$t -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" "$work" "tests/fuzz/corpus/$t" \
      >"build-fuzz/$t.log" 2>&1; then
    failed+=("$t")
    tail -n 60 "build-fuzz/$t.log" >&2
  fi
  grep -E '^stat::number_of_executed_units|^stat::new_units_added' "build-fuzz/$t.log" | tr '\n' ' ' || true
  echo
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in build-fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s clean"
