#!/usr/bin/env bash
# scripts/pg.sh — a private PostgreSQL 15 cluster for mrgate (make run, make test, and the tests themselves).
#
#   scripts/pg.sh start [DIR]   create (initdb) when missing, start when stopped; prints nothing else on success.
#                               The cluster keeps PostgreSQL's durable defaults (fsync, synchronous_commit and
#                               full_page_writes on): this is the cluster `make run` keeps your data in.
#   scripts/pg.sh start-fast [DIR]   the same for a throwaway test cluster (`make test`, the tests' own clusters):
#                               fsync, synchronous_commit and full_page_writes off, so an OS crash or power loss
#                               may corrupt it. Never for data you keep.
#   scripts/pg.sh stop  [DIR]   stop it (fast shutdown)
#   scripts/pg.sh url   [DIR] [DBNAME]   print the libpq URL of DBNAME (default mrgate) on that cluster
#
# DIR defaults to .mrgate/pg under the repository. The cluster listens on a Unix socket only (no TCP port), in
# a private directory. As root, PostgreSQL runs as the unprivileged "postgres" user (Debian's), since it refuses
# to run as root; as any other user it runs as that user. The bootstrap superuser is called "mrgate".
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
dir=${2:-$root/.mrgate/pg}
pgbin=/usr/lib/postgresql/15/bin

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
hash=$(printf '%s' "$dir" | sha256sum | cut -c1-12)

as_pg=()
base=$dir
if [ "$(id -u)" -eq 0 ]; then
  as_pg=(runuser -u postgres --)
  # PostgreSQL runs as "postgres", which must reach the data directory. A checkout under a private
  # directory (such as /root) cannot host it: keep the cluster under /var/tmp instead, named after $dir.
  if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
    base=/var/tmp/mrgate-pg-$hash
    mkdir -p "$base"
    echo "$base" > "$dir/LOCATION"
  fi
fi
data=$base/data
# The socket path must stay under the 107-byte limit of sun_path; a long path falls back to /tmp.
sock=$base/run
if [ ${#sock} -gt 80 ]; then
  sock=/tmp/mrgate-pg-$hash
fi

url() {
  printf 'postgresql://mrgate@/%s?host=%s\n' "${1:-mrgate}" "$sock"
}

start() {
  mkdir -p "$sock"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$base" "$sock"
  fi
  chmod 0700 "$sock"
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    "${as_pg[@]}" "$pgbin/initdb" -D "$data" -U mrgate -A trust -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 || {
      cat "$base/initdb.log" >&2; exit 1; }
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sock'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 128MB
log_min_messages = warning
include_if_exists = 'mrgate-speed.conf'
CONF
  fi
  # Durability: the speed settings live in their own file, written for a test cluster (start-fast) and removed
  # for any other start, so a cluster is always in the mode it was last started in. Clusters made by earlier
  # versions of this script carried them in postgresql.conf itself: take them out (the next start is durable).
  sed -i -E '/^(fsync|synchronous_commit|full_page_writes) = /d' "$data/postgresql.conf"
  grep -q "^include_if_exists = 'mrgate-speed.conf'" "$data/postgresql.conf" ||
    echo "include_if_exists = 'mrgate-speed.conf'" >>"$data/postgresql.conf"
  if [ "$1" = fast ]; then
    printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' >"$data/mrgate-speed.conf"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$data/mrgate-speed.conf"
  else
    rm -f "$data/mrgate-speed.conf"
  fi
  # The socket directory may have moved (a different checkout path); keep the config pointing at it.
  sed -i "s|^unix_socket_directories = .*|unix_socket_directories = '$sock'|" "$data/postgresql.conf"
  if ! "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" -l "$base/postgresql.log" -w -t 60 start >/dev/null || {
      tail -n 20 "$base/postgresql.log" >&2; exit 1; }
  else
    # Already running, perhaps in the other mode: all three settings take effect on a reload.
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" reload >/dev/null
  fi
}

stop() {
  if [ -f "$data/PG_VERSION" ] && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
}

case "$cmd" in
  start) start durable ;;
  start-fast) start fast ;;
  stop) stop ;;
  url) url "${3:-mrgate}" ;;
  *) echo "usage: scripts/pg.sh start|start-fast|stop|url [DIR] [DBNAME]" >&2; exit 2 ;;
esac
