#!/usr/bin/env bash
# Builds unmask and runs every test: unit tests and fixture conformance (ctest),
# then bounded fuzzing of the file parsers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 900)
if [ -f scripts/fuzz.sh ]; then
  FUZZ_SECONDS="${FUZZ_SECONDS:-60}" bash scripts/fuzz.sh
fi
