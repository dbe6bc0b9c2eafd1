#!/usr/bin/env bash
# The main job: build, then generate Python with the shipped default model
# (models/unmask-coder-tiny, found next to the binary when -m is not given), watching
# the canvas unmask live; then fill a masked function body (--infill).
# `bash scripts/demo.sh MODEL_DIR` runs the same on another model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
M=()
[ $# -ge 1 ] && M=(-m "$1")
echo "== unmask inspect"
./build/unmask inspect -m "${1:-models/unmask-coder-tiny}"
echo "== unmask run -p 'def read_config(path):' (fast decoder, dual cache, up to 96 tokens)"
./build/unmask run "${M[@]}" -p 'def read_config(path):' --max-tokens 96 --seed 1
echo "== infilling: unmask run --infill (a function body of 16 masks between fixed code)"
./build/unmask run "${M[@]}" --seed 1 \
  --infill $'def is_even(n):\n    """Return True if n is even."""{mask:16}\n\n\nprint(is_even(4))\n'
