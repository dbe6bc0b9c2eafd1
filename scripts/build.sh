#!/usr/bin/env bash
# Configures and builds unmask (Release) into build/. Extra args go to cmake configure.
set -euo pipefail
cd "$(dirname "$0")/.."
WERROR=OFF
[ "${CI:-}" = "true" ] && WERROR=ON
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DUNMASK_WERROR="$WERROR" "$@" > build.configure.log 2>&1 \
  || { cat build.configure.log; exit 1; }
cmake --build build -j"$(nproc)"
