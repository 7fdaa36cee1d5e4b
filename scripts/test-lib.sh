#!/usr/bin/env bash
# scripts/test-lib.sh — sourced by scripts/test.sh (`make test`) and scripts/test-asan.sh (`make test-asan`): the
# steps both take around ctest, from the repository root, under `set -euo pipefail`.
#
#   test_prepare BUILD_DIR       npm packages of the browser tests; the test PostgreSQL (.mrgate/test-pg, fsync off,
#                                started unless MRGATE_TEST_DATABASE_URL is set; exported); the databases of earlier
#                                runs (t_<test>_<pid>) dropped and BUILD_DIR/test-work emptied: every run starts fresh.
#   test_ctest BUILD_DIR ARGS..  ctest on BUILD_DIR with ARGS and $CTEST_ARGS, MRGATE_TEST_JOBS (2) at a time, logged
#                                to BUILD_DIR/ctest.log; prints the summary line; returns ctest's exit status.

test_prepare() {
  local build=$1
  if [ -d tests/e2e ] && [ -f tests/e2e/package.json ]; then
    scripts/npm-install.sh tests/e2e
  fi
  if [ -z "${MRGATE_TEST_DATABASE_URL:-}" ]; then
    scripts/pg.sh start-fast .mrgate/test-pg
    MRGATE_TEST_DATABASE_URL=$(scripts/pg.sh url .mrgate/test-pg postgres)
    export MRGATE_TEST_DATABASE_URL
  fi
  psql -X -q -At -d "$MRGATE_TEST_DATABASE_URL" -c "SELECT datname FROM pg_database WHERE datname LIKE 't\_%'" |
    while read -r db; do psql -X -q -d "$MRGATE_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done
  rm -rf "$build/test-work"
}

test_ctest() {
  local build=$1 rc
  shift
  set +e
  # shellcheck disable=SC2086 # CTEST_ARGS is a list of words
  ctest --test-dir "$build" --output-on-failure -j"${MRGATE_TEST_JOBS:-2}" "$@" ${CTEST_ARGS:-} 2>&1 | tee "$build/ctest.log"
  rc=${PIPESTATUS[0]}
  set -e
  echo
  grep -E '^[0-9]+% tests passed' "$build/ctest.log" || true
  return "$rc"
}
