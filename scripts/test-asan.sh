#!/usr/bin/env bash
# scripts/test-asan.sh — `make test-asan`: the whole suite once more, with mrgate, the simulator and every C test
# built with AddressSanitizer, LeakSanitizer and UBSan into build-asan/. Any report fails the run: the C tests fail
# themselves (UBSan does not recover; LSan makes the exit status non-zero), and the reports of server and simulator
# processes (which the Python tests stop) are collected from build-asan/sanitizer-logs/ at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
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
if [ -d tests/e2e ] && [ -f tests/e2e/package.json ]; then
  scripts/npm-install.sh tests/e2e
fi
if [ -z "${MRGATE_TEST_DATABASE_URL:-}" ]; then
  scripts/pg.sh start-fast .mrgate/test-pg
  export MRGATE_TEST_DATABASE_URL=$(scripts/pg.sh url .mrgate/test-pg postgres)
fi
psql -X -q -At -d "$MRGATE_TEST_DATABASE_URL" -c "SELECT datname FROM pg_database WHERE datname LIKE 't\_%'" |
  while read -r db; do psql -X -q -d "$MRGATE_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done
rm -rf build-asan/test-work build-asan/sanitizer-logs
mkdir -p build-asan/sanitizer-logs
logs=$root/build-asan/sanitizer-logs
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0:log_path=$logs/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0

jobs=${MRGATE_TEST_JOBS:-2}
set +e
ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 1800 ${CTEST_ARGS:-} 2>&1 | tee build-asan/ctest.log
rc=${PIPESTATUS[0]}
set -e
echo
grep -E '^[0-9]+% tests passed' build-asan/ctest.log || true
reports=$(ls "$logs" 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ]; then
  echo "test-asan: $reports sanitizer report(s) in build-asan/sanitizer-logs/:" >&2
  for f in "$logs"/*; do echo "== $f" >&2; head -n 40 "$f" >&2; done
  rc=1
else
  echo "test-asan: no sanitizer reports"
fi
exit "$rc"
