#!/usr/bin/env bash
# scripts/build.sh — install missing packages, configure and build with CMake into build/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh
mkdir -p build
if ! cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >build/cmake.log 2>&1; then
  cat build/cmake.log >&2
  exit 1
fi
if ! cmake --build build -j"$(nproc)" >build/build.log 2>&1; then
  grep -E 'error|Error' build/build.log >&2 || tail -n 40 build/build.log >&2
  exit 1
fi
