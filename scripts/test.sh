#!/usr/bin/env bash
# scripts/test.sh — `make test`: build, start the test PostgreSQL, run every ctest label, print the summary.
#
# The tests create their own databases on the cluster named by MRGATE_TEST_DATABASE_URL (an admin URL that may
# CREATE DATABASE). Without it, a test cluster under .mrgate/test-pg is used: it runs with fsync off for speed
# (scripts/pg.sh start-fast) and holds only throwaway databases; `make run`'s durable cluster is .mrgate/pg. Browser tests need playwright-core,
# installed from npm into tests/e2e/node_modules. The steps shared with test-asan.sh are in scripts/test-lib.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/test-lib.sh
scripts/build.sh
test_prepare build
rc=0
test_ctest build || rc=$?
exit "$rc"
