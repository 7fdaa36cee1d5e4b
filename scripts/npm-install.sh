#!/usr/bin/env bash
# scripts/npm-install.sh DIR — install DIR's npm packages when package-lock.json changed since the last install.
set -euo pipefail
dir=$1
cd "$dir"
stamp=node_modules/.mrgate-installed
if [ -f "$stamp" ] && [ "$stamp" -nt package.json ] && { [ ! -f package-lock.json ] || [ "$stamp" -nt package-lock.json ]; }; then
  exit 0
fi
echo "mrgate: installing npm packages in $dir"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
touch "$stamp"
