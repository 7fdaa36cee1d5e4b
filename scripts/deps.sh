#!/usr/bin/env bash
# scripts/deps.sh — install the Debian packages mrgate builds, runs and tests with.
# Idempotent and silent when everything is present. Runs apt-get through sudo when not root.
# `scripts/deps.sh fuzz` also installs what `make fuzz` needs (Debian's clang and its libFuzzer runtime).
# `scripts/deps.sh bench` also installs what the HTTP benchmarks need (wrk: bench/webhook, bench/repos).
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-format
  libarchive-dev libcivetweb-dev libcurl4-openssl-dev libjson-c-dev libpq-dev libsodium-dev libssl-dev zlib1g-dev
  postgresql-15 postgresql-client-15
  curl ca-certificates openssl git
  python3 python3-gitlab python3-yaml python3-jsonschema
  chromium
)
if [ "${1:-}" = fuzz ]; then
  packages+=(clang libclang-rt-14-dev)
fi
if [ "${1:-}" = bench ]; then
  packages+=(wrk)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js: any nodejs that brings npm will do (Debian's or NodeSource's, which bundles npm).
if ! command -v npm >/dev/null 2>&1; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  dpkg-query -W -f='${Status}' nodejs 2>/dev/null | grep -q "install ok installed" && dpkg-query -W nodejs | grep -q nodesource || missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "mrgate: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
