# mrgate — the two commands a newcomer runs are `make run` and `make test` (see README.md).
# This Makefile is a thin layer over scripts/.

.PHONY: run test test-asan fuzz build demo deps db clean bench bench-secrets bench-webhook bench-repos

run:            ## install what is missing, build, start the local PostgreSQL, migrate, serve on :8080
	@scripts/run.sh

test:           ## the whole suite (unit, db, http, sim, e2e) against a fresh test database
	@scripts/test.sh

test-asan:      ## the whole suite again, built with ASan + LeakSanitizer + UBSan into build-asan/; any report fails
	@scripts/test-asan.sh

fuzz:           ## build the libFuzzer targets (clang) into build-fuzz/ and run each for FUZZ_SECONDS (default 60)
	@scripts/fuzz.sh

demo:           ## like run, plus the GitLab simulator seeded with a few hundred repos and a ready token
	@MRGATE_DEMO=1 scripts/run.sh

build:          ## install missing packages and build
	@scripts/build.sh

deps:           ## install missing Debian and npm packages
	@scripts/deps.sh

db:             ## start the local PostgreSQL cluster under .mrgate/
	@scripts/pg.sh start

bench:          ## build, then time applying a config to 1,000 simulated repos (bench/apply; docs/PERFORMANCE.md)
	@scripts/build.sh
	@bench/apply

bench-webhook:  ## build, install wrk, then measure webhook acks/s and GET /healthz with fsync on (bench/webhook; docs/PERFORMANCE.md)
	@scripts/build.sh
	@scripts/deps.sh bench
	@bench/webhook
bench-repos:    ## build, install wrk, then load GET /api/repos at 10,000 and 100,000 repos beside /healthz and pgbench (bench/repos)
	@scripts/build.sh
	@scripts/deps.sh bench
	@bench/repos

bench-secrets:  ## build, then compare the secrets scanner with gitleaks and secretlint (bench/scan-quality; docs/SECRETS.md)
	@scripts/build.sh
	@bench/scan-quality

clean:          ## remove the build trees (the database under .mrgate/ is kept)
	rm -rf build build-asan build-fuzz
