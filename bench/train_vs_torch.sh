#!/usr/bin/env bash
# Training speed, unmask (f32 and bf16 compute) vs the PyTorch reference on the same model,
# batch and loss: issue 6's side-by-side (docs/training.md). One thread each, PyTorch with
# OpenBLAS pinned to one thread; ROUNDS rounds of presets run back to back so a busy
# machine slows both alike. Prints one line per run: preset, engine, tokens/s, GFLOP/s,
# fraction of the f32 FMA peak (unmask measures it in the same process).
# Usage: bench/train_vs_torch.sh   Environment: UNMASK (build/unmask), ROUNDS (2),
# PRESETS ("tiny small medium"), PYTHON (/usr/bin/python3, Debian's python3-torch).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
UNMASK=${UNMASK:-$REPO/build/unmask}
ROUNDS=${ROUNDS:-2}
PRESETS=${PRESETS:-tiny small medium}
PYTHON=${PYTHON:-/usr/bin/python3}
[[ -x "$UNMASK" ]] || { echo "$0: no unmask binary at $UNMASK (set UNMASK=...)" >&2; exit 2; }

# preset -> sequence length, unmask steps, PyTorch steps (fewer for the slow engine).
shape() {
  case "$1" in
    tiny) echo "128 4 4" ;;
    small) echo "256 2 2" ;;
    medium) echo "256 3 2" ;;
    *) echo "$0: unknown preset $1" >&2; exit 2 ;;
  esac
}

for round in $(seq "$ROUNDS"); do
  for preset in $PRESETS; do
    read -r seq steps torch_steps < <(shape "$preset")
    echo "round $round/$ROUNDS: $preset" >&2
    for compute in f32 bf16; do
      "$UNMASK" train --bench --preset "$preset" --batch 8 --seq-len "$seq" --vocab 4096 --threads 1 \
        --steps "$steps" --compute "$compute" 2>/dev/null | tail -1 |
        "$PYTHON" -c "import json,sys; d=json.load(sys.stdin); print('$preset unmask-$compute', round(d['tokens_per_s']), round(d['gflops_per_s'], 1), d['fraction_of_fma_peak'], flush=True)"
    done
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$PYTHON" "$REPO/scripts/reference/train_reference.py" --bench \
      --preset "$preset" --threads 1 --batch 8 --seq-len "$seq" --vocab 4096 --steps "$torch_steps" 2>/dev/null |
      tail -1 | "$PYTHON" -c "import json,sys; d=json.load(sys.stdin); print('$preset pytorch-f32', round(d['tokens_per_s']), flush=True)"
  done
done
