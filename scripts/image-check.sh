#!/usr/bin/env bash
# scripts/image-check.sh — run the Docker image's runtime stage the way it runs, on a machine without a Docker engine.
#
# Builds the runtime stage's file system from Debian 12 with exactly the packages the Dockerfile's runtime stage
# installs (debootstrap, from the Debian mirror this machine's apt uses; cached between runs), makes the same user,
# copies in what the Dockerfile copies (the binary and compat libraries from build/, web/), and then, in that file
# system and as the unprivileged user with the Dockerfile's ENV:
#   - starts `mrgate serve` against a PostgreSQL 15 reached over TCP (as docker-compose's is), over HTTP and over
#     HTTPS (MRGATE_TLS_CERT), checks /healthz from outside, and runs the Dockerfile's HEALTHCHECK command (parsed
#     from the Dockerfile, run by the image's /bin/sh) which must exit 0.
# Needs root (debootstrap, chroot, mounts) and a build (scripts/build.sh). Run by .ci/run after `make test`.
#
#   scripts/image-check.sh            MRGATE_IMAGE_CACHE (default /var/cache/mrgate-image-check) keeps the rootfs
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
t_start=$(date +%s)
say() { printf 'image-check: %s\n' "$*"; }
die() { printf 'image-check: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts)"
[ -x build/mrgate ] && [ -f build/sslcompat/libssl.so ] && [ -f build/sslcompat/libcrypto.so ] ||
  die "build first (scripts/build.sh): build/mrgate and build/sslcompat/lib{ssl,crypto}.so are needed"

# --- what the Dockerfile's runtime stage is made of -----------------------------------------------------------------
runtime=$(awk '/^FROM debian:12-slim/{on=1} on' Dockerfile)
[ -n "$runtime" ] || die "the Dockerfile has no 'FROM debian:12-slim' runtime stage"
# the packages of its apt-get install (continued lines joined), up to the first &&
pkgs=$(printf '%s\n' "$runtime" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -m1 'apt-get install' |
  sed -e 's/.*apt-get install[^&]*--no-install-recommends//' -e 's/&&.*//' | xargs)
[ -n "$pkgs" ] || die "could not read the runtime stage's packages"
healthcheck=$(printf '%s\n' "$runtime" | sed -n 's/^HEALTHCHECK CMD \(\[.*\]\)[[:space:]]*$/\1/p')
[ -n "$healthcheck" ] || die "the runtime stage has no exec-form HEALTHCHECK CMD"
say "runtime packages: $pkgs"

# --- Debian's mirror as configured here (deb822 sources or a classic list) -----------------------------------------
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
  /^URIs:/ {u=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i=="bookworm" && u!="") {print u; exit}}')
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1=="deb" && $3=="bookworm" {print $2; exit}')
fi
[ -n "$mirror" ] || die "no Debian bookworm mirror in /etc/apt/sources.list*"

# --- the runtime file system, cached by its package list ------------------------------------------------------------
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
fi
cache=${MRGATE_IMAGE_CACHE:-/var/cache/mrgate-image-check}
key=$(printf 'bookworm minbase %s %s' "$mirror" "$pkgs" | sha256sum | cut -c1-16)
base=$cache/rootfs-$key
t0=$(date +%s)
if [ -f "$base/.complete" ]; then
  say "runtime file system from the cache ($base)"
else
  say "debootstrap bookworm (minbase + runtime packages) from $mirror"
  rm -rf "$base" "$base.tmp"
  mkdir -p "$cache"
  debootstrap --variant=minbase --include="$(echo "$pkgs" | tr ' ' ',')" bookworm "$base.tmp" "$mirror" \
    >"$cache/debootstrap-$key.log" 2>&1 || { tail -n 30 "$cache/debootstrap-$key.log" >&2; die "debootstrap"; }
  rm -rf "$base.tmp/var/cache/apt/archives/"*.deb "$base.tmp/var/lib/apt/lists/"*
  touch "$base.tmp/.complete"
  mv "$base.tmp" "$base"
fi
t_rootfs=$(( $(date +%s) - t0 ))

work=$(mktemp -d /var/tmp/mrgate-image-check.XXXXXX)
rootfs=$work/rootfs
pgdir=$work/pg
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -f "$pgdir/data/PG_VERSION" ] && runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$pgdir/data" \
    -m immediate -w stop >/dev/null 2>&1
  for m in proc dev; do mountpoint -q "$rootfs/$m" && umount -l "$rootfs/$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
cp -a "$base" "$rootfs"

# the runtime stage's RUN (user), COPY and USER lines, done as docker would
chroot "$rootfs" useradd --system --home /var/lib/mrgate --create-home mrgate
install -m 0755 build/mrgate "$rootfs/usr/local/bin/mrgate"
mkdir -p "$rootfs/usr/local/lib/mrgate" "$rootfs/usr/share/mrgate"
install -m 0644 build/sslcompat/libssl.so build/sslcompat/libcrypto.so "$rootfs/usr/local/lib/mrgate/"
cp -a web "$rootfs/usr/share/mrgate/web"
mount -t proc proc "$rootfs/proc"
mount --bind /dev "$rootfs/dev"
# the binary must not need the build tree nor LD_LIBRARY_PATH
if readelf -d "$rootfs/usr/local/bin/mrgate" | grep -E 'R(UN)?PATH' | grep -q "$root"; then
  die "the binary carries a path of the build tree: $(readelf -d build/mrgate | grep -E 'R(UN)?PATH')"
fi
chroot "$rootfs" /bin/sh -c 'readlink -f /bin/sh' | grep -q dash || die "the image's /bin/sh is not dash"

# --- PostgreSQL 15 over TCP, as in docker-compose -------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgport=$(free_port)
mkdir -p "$pgdir"
chown postgres:postgres "$pgdir"
chmod 0755 "$work"
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$pgdir/data" -U mrgate -A trust -E UTF8 \
  --locale=C.UTF-8 >"$pgdir/initdb.log" 2>&1 || { cat "$pgdir/initdb.log" >&2; die "initdb"; }
cat >>"$pgdir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = ''
fsync = off
CONF
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$pgdir/data" -l "$pgdir/log" -w -t 60 start \
  >/dev/null || { tail -n 20 "$pgdir/log" >&2; die "postgresql"; }
/usr/lib/postgresql/15/bin/psql -q -h 127.0.0.1 -p "$pgport" -U mrgate -d postgres -c 'CREATE DATABASE mrgate' \
  >/dev/null

# --- mrgate in the image, as the image runs it ----------------------------------------------------------------------
# the Dockerfile's ENV, with a free port instead of 8080 (this machine is shared)
port=$(free_port)
image_env=(HOME=/var/lib/mrgate PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  MRGATE_LISTEN=0.0.0.0:$port MRGATE_WEB_ROOT=/usr/share/mrgate/web MRGATE_SECRET_KEY_FILE=/var/lib/mrgate/secret.key
  MRGATE_DATABASE_URL=postgresql://mrgate@127.0.0.1:$pgport/mrgate MRGATE_ADMIN_PASSWORD=image-check-password-1
  MRGATE_LOG_FORMAT=text)

start_mrgate() { # extra env...
  local log=$work/mrgate-$#.log
  chroot --userspec=mrgate:mrgate "$rootfs" /usr/bin/env -i "${image_env[@]}" "$@" /usr/local/bin/mrgate serve \
    >"$log" 2>&1 &
  pids+=($!)
  mlog=$log
}

healthcheck() { # extra env...: the Dockerfile's HEALTHCHECK, in the image, as its user
  python3 - "$rootfs" "$healthcheck" "${image_env[@]}" "$@" <<'PY'
import json, os, subprocess, sys
rootfs, cmd, env = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
r = subprocess.run(["chroot", "--userspec=mrgate:mrgate", rootfs, "/usr/bin/env", "-i", *env, *cmd])
sys.exit(r.returncode)
PY
}

wait_healthz() { # scheme curl-args...
  local scheme=$1; shift
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null --max-time 2 "$@" "$scheme://127.0.0.1:$port/healthz" 2>/dev/null; then return 0; fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.2
  done
  cat "$mlog" >&2
  die "mrgate in the image did not answer $scheme://127.0.0.1:$port/healthz"
}

stop_mrgate() {
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  unset 'pids[-1]'
}

# HTTP
start_mrgate
wait_healthz http
say "http:  /healthz 200 from outside"
healthcheck || { rc=$?; cat "$mlog" >&2; die "HEALTHCHECK over http exited $rc"; }
say "http:  HEALTHCHECK exit 0"
stop_mrgate

# HTTPS: a certificate for the public name in the user's home (a volume in docker-compose)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" -days 2 \
  -subj /CN=mrgate.example.com -addext "subjectAltName=DNS:mrgate.example.com,IP:127.0.0.1" >/dev/null 2>&1
cat "$work/tls.key" "$work/tls.crt" >"$rootfs/var/lib/mrgate/tls.pem"
chroot "$rootfs" chown mrgate:mrgate /var/lib/mrgate/tls.pem
chmod 0600 "$rootfs/var/lib/mrgate/tls.pem"
start_mrgate MRGATE_TLS_CERT=/var/lib/mrgate/tls.pem
wait_healthz https --cacert "$work/tls.crt"
say "https: /healthz 200 from outside (certificate verified)"
healthcheck MRGATE_TLS_CERT=/var/lib/mrgate/tls.pem ||
  { rc=$?; cat "$mlog" >&2; die "HEALTHCHECK over https exited $rc"; }
say "https: HEALTHCHECK exit 0"
stop_mrgate

say "passed in $(( $(date +%s) - t_start ))s (runtime file system: ${t_rootfs}s)"
