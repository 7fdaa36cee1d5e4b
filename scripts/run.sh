#!/usr/bin/env bash
# scripts/run.sh — `make run`: set everything up and serve mrgate on http://127.0.0.1:8080.
#
# Without MRGATE_DATABASE_URL, a private PostgreSQL cluster under .mrgate/pg is created (once) and started; mrgate
# keeps its data in its database "mrgate". `make demo` (MRGATE_DEMO=1) uses the database "mrgate_demo" of the same
# cluster instead, made anew on every start: the simulator it connects to is seeded anew too, and a demo never touches
# what `make run` keeps (its connection, configs and users).
# The first start creates user "admin"; its password is MRGATE_ADMIN_PASSWORD, or a random one written to
# .mrgate/admin-password (mode 0600) and printed. The cluster keeps PostgreSQL's durable defaults (fsync on).
# For the tests only: MRGATE_STATE_DIR replaces .mrgate/ and MRGATE_BIN names a built mrgate (no build then).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${MRGATE_BIN:-build/mrgate}
[ -n "${MRGATE_BIN:-}" ] || scripts/build.sh
state=${MRGATE_STATE_DIR:-.mrgate}
# .mrgate/ stays traversable: PostgreSQL's own user must reach .mrgate/pg (its data directory is 0700 itself), and
# the secrets in here are files of mode 0600 (secret.key, admin-password).
mkdir -p "$state"
state=$(cd "$state" && pwd)

listen=${MRGATE_LISTEN:-127.0.0.1:8080}
# A port in use is said before anything is touched: a second `make demo` made the running demo's database anew
# under it, and only then found its port taken.
port_in_use() {
  local host=${1%:*} port=${1##*:}
  case $host in '' | 0.0.0.0 | '*') host=127.0.0.1 ;; '[::]') host=::1 ;; esac
  host=${host#[}
  host=${host%]}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}
if port_in_use "$listen"; then
  echo "make $([ -n "${MRGATE_DEMO:-}" ] && echo demo || echo run): $listen is in use (is mrgate already running? \`make run\` and" \
    "\`make demo\` both serve there): stop it, or serve on another port with MRGATE_LISTEN=127.0.0.1:8081" >&2
  exit 1
fi
if [ -n "${MRGATE_DEMO:-}" ] && port_in_use "${MRGATE_DEMO_GITLAB:-127.0.0.1:8929}"; then
  echo "make demo: ${MRGATE_DEMO_GITLAB:-127.0.0.1:8929} is in use (is a demo already running?): stop it, or run" \
    "the GitLab simulator on another port with MRGATE_DEMO_GITLAB=127.0.0.1:8930" >&2
  exit 1
fi

if [ -z "${MRGATE_DATABASE_URL:-}" ]; then
  scripts/pg.sh start "$state/pg"
  admin_url=$(scripts/pg.sh url "$state/pg" postgres)
  db=mrgate
  if [ -n "${MRGATE_DEMO:-}" ]; then
    db=mrgate_demo
    # a demo still running on other ports uses the database this one would make anew: a walk started a second
    # demo on the ports the first refusal suggested, and it dropped the running demo's data under it
    # (a demo stopped a moment ago may still be closing its connections: a few seconds for them)
    for _ in $(seq 20); do
      in_use=$(psql -X -q -At -d "$admin_url" \
        -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'mrgate_demo' AND pid <> pg_backend_pid()")
      [ "${in_use:-0}" = 0 ] && break
      sleep 0.25
    done
    if [ "${in_use:-0}" != 0 ]; then
      echo "make demo: a demo is already running (its database mrgate_demo has $in_use connections): stop it" \
        "(Ctrl-C where it runs) before starting another; each demo starts afresh" >&2
      exit 1
    fi
    PGOPTIONS='-c client_min_messages=warning' psql -X -q -d "$admin_url" \
      -c "DROP DATABASE IF EXISTS mrgate_demo" >/dev/null
  fi
  if ! psql -X -q -At -d "$admin_url" -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql -X -q -d "$admin_url" -c "CREATE DATABASE $db" >/dev/null
  fi
  export MRGATE_DATABASE_URL=$(scripts/pg.sh url "$state/pg" "$db")
fi

if [ -z "${MRGATE_ADMIN_PASSWORD:-}" ]; then
  if [ ! -f "$state/admin-password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$state/admin-password")
  fi
  export MRGATE_ADMIN_PASSWORD=$(cat "$state/admin-password")
fi
export MRGATE_SECRET_KEY_FILE=${MRGATE_SECRET_KEY_FILE:-$state/secret.key}
export MRGATE_WEB_ROOT=${MRGATE_WEB_ROOT:-$root/web}
export MRGATE_LOG_FORMAT=${MRGATE_LOG_FORMAT:-text}
export MRGATE_PUBLIC_URL=${MRGATE_PUBLIC_URL:-http://$listen}

"$bin" migrate
if [ -n "${MRGATE_DEMO:-}" ]; then
  exec scripts/demo.sh
fi

cat <<MSG

  mrgate is starting on ${MRGATE_PUBLIC_URL}
  Log in as "admin" with the password $( [ -f "$state/admin-password" ] && [ "$(cat "$state/admin-password")" = "$MRGATE_ADMIN_PASSWORD" ] && printf 'printed by: cat %s/admin-password' "$state" || printf 'in MRGATE_ADMIN_PASSWORD')
  (it only creates the admin on the first start; add users with:
   MRGATE_DATABASE_URL=$MRGATE_DATABASE_URL build/mrgate user add NAME --role editor)
  Stop with Ctrl-C.

MSG
exec "$bin" serve
