#!/usr/bin/env bash
# scripts/test.sh — `make test`: build, start the test PostgreSQL, run every ctest label, print the summary.
#
# The tests create their own databases on the cluster named by MRGATE_TEST_DATABASE_URL (an admin URL that may
# CREATE DATABASE). Without it, a test cluster under .mrgate/test-pg is used: it runs with fsync off for speed
# (scripts/pg.sh start-fast) and holds only throwaway databases; `make run`'s durable cluster is .mrgate/pg. Browser tests need playwright-core,
# installed from npm into tests/e2e/node_modules.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build.sh
if [ -d tests/e2e ] && [ -f tests/e2e/package.json ]; then
  scripts/npm-install.sh tests/e2e
fi

if [ -z "${MRGATE_TEST_DATABASE_URL:-}" ]; then
  scripts/pg.sh start-fast .mrgate/test-pg
  export MRGATE_TEST_DATABASE_URL=$(scripts/pg.sh url .mrgate/test-pg postgres)
fi
# Leftover databases of earlier runs (t_<test>_<pid>) are dropped: every run starts fresh.
psql -X -q -At -d "$MRGATE_TEST_DATABASE_URL" -c "SELECT datname FROM pg_database WHERE datname LIKE 't\_%'" |
  while read -r db; do psql -X -q -d "$MRGATE_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done
rm -rf build/test-work

jobs=${MRGATE_TEST_JOBS:-2}
set +e
ctest --test-dir build --output-on-failure -j"$jobs" ${CTEST_ARGS:-} 2>&1 | tee build/ctest.log
rc=${PIPESTATUS[0]}
set -e
echo
grep -E '^[0-9]+% tests passed' build/ctest.log || true
exit "$rc"
