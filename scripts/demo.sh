#!/usr/bin/env bash
# The main job: build, then generate with a shipped model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
MODEL="${1:-tests/data/llada-tiny}"
echo "== unmask inspect -m $MODEL"
./build/unmask inspect -m "$MODEL"
echo "== unmask run -m $MODEL -p 'What is 2+3?' (fast decoder, dual cache, up to 32 tokens)"
./build/unmask run -m "$MODEL" -p "What is 2+3?" --max-tokens 32 --block-length 8 --cache dual --threshold 0.9
echo "== the same with the LLaDA reference decoder (fixed canvas of 32, blocks of 8, 16 steps)"
./build/unmask run -m "$MODEL" -p "What is 2+3?" --decoder reference --gen-length 32 --block-length 8 --steps 16
