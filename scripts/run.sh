#!/usr/bin/env bash
# scripts/run.sh — `make run`: set everything up and serve mrgate on http://127.0.0.1:8080.
#
# Without MRGATE_DATABASE_URL, a private PostgreSQL cluster under .mrgate/pg is created (once) and started.
# The first start creates user "admin"; its password is MRGATE_ADMIN_PASSWORD, or a random one written to
# .mrgate/admin-password (mode 0600) and printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build.sh
# .mrgate/ stays traversable: PostgreSQL's own user must reach .mrgate/pg (its data directory is 0700 itself), and
# the secrets in here are files of mode 0600 (secret.key, admin-password).
mkdir -p .mrgate

if [ -z "${MRGATE_DATABASE_URL:-}" ]; then
  scripts/pg.sh start
  admin_url=$(scripts/pg.sh url "" postgres)
  if ! psql -X -q -At -d "$admin_url" -c "SELECT 1 FROM pg_database WHERE datname = 'mrgate'" | grep -q 1; then
    psql -X -q -d "$admin_url" -c "CREATE DATABASE mrgate" >/dev/null
  fi
  export MRGATE_DATABASE_URL=$(scripts/pg.sh url)
fi

if [ -z "${MRGATE_ADMIN_PASSWORD:-}" ]; then
  if [ ! -f .mrgate/admin-password ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' > .mrgate/admin-password)
  fi
  export MRGATE_ADMIN_PASSWORD=$(cat .mrgate/admin-password)
fi
export MRGATE_SECRET_KEY_FILE=${MRGATE_SECRET_KEY_FILE:-$root/.mrgate/secret.key}
export MRGATE_WEB_ROOT=${MRGATE_WEB_ROOT:-$root/web}
export MRGATE_LOG_FORMAT=${MRGATE_LOG_FORMAT:-text}
listen=${MRGATE_LISTEN:-127.0.0.1:8080}
export MRGATE_PUBLIC_URL=${MRGATE_PUBLIC_URL:-http://$listen}

build/mrgate migrate
if [ -n "${MRGATE_DEMO:-}" ]; then
  exec scripts/demo.sh
fi

cat <<MSG

  mrgate is starting on ${MRGATE_PUBLIC_URL}
  Log in as "admin" with the password $( [ -f .mrgate/admin-password ] && [ "$(cat .mrgate/admin-password)" = "$MRGATE_ADMIN_PASSWORD" ] && printf 'printed by: cat .mrgate/admin-password' || printf 'in MRGATE_ADMIN_PASSWORD')
  (it only creates the admin on the first start; add users with: build/mrgate user add NAME --role editor)
  Stop with Ctrl-C.

MSG
exec build/mrgate serve
