#!/usr/bin/env bash
# scripts/test-asan.sh — `make test-asan`: the whole suite once more, with mrgate, the simulator and every C test
# built with AddressSanitizer, LeakSanitizer and UBSan into build-asan/. Any report fails the run: the C tests fail
# themselves (UBSan does not recover; LSan makes the exit status non-zero), and the reports of server and simulator
# processes (which the Python tests stop) are collected from build-asan/sanitizer-logs/ at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/test-lib.sh
scripts/deps.sh
mkdir -p build-asan
if ! cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMRGATE_SANITIZE=ON >build-asan/cmake.log 2>&1; then
  cat build-asan/cmake.log >&2
  exit 1
fi
if ! cmake --build build-asan -j"$(nproc)" >build-asan/build.log 2>&1; then
  grep -E 'error|Error' build-asan/build.log >&2 || tail -n 40 build-asan/build.log >&2
  exit 1
fi
test_prepare build-asan
rm -rf build-asan/sanitizer-logs
mkdir -p build-asan/sanitizer-logs
logs=$root/build-asan/sanitizer-logs
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0:log_path=$logs/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0

rc=0
test_ctest build-asan --timeout 1800 || rc=$?
reports=$(ls "$logs" 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ]; then
  echo "test-asan: $reports sanitizer report(s) in build-asan/sanitizer-logs/:" >&2
  for f in "$logs"/*; do echo "== $f" >&2; head -n 40 "$f" >&2; done
  rc=1
else
  echo "test-asan: no sanitizer reports"
fi
exit "$rc"
