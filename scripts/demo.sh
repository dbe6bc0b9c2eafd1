#!/usr/bin/env bash
# The main job: build, then generate with a shipped model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
MODEL="${1:-tests/data/llada-tiny}"
echo "== unmask inspect -m $MODEL"
./build/unmask inspect -m "$MODEL"
echo "== unmask run -m $MODEL (LLaDA chat prompt ids, 32 tokens, blocks of 8)"
./build/unmask run -m "$MODEL" --ids 500,507,422,508,10,10,87,405,375,32,50,43,51,63,509,507,293,283,267,340,508,10,10 \
  --gen-length 32 --block-length 8 --steps 16
