#!/usr/bin/env bash
# Seconds per diffusion step, unmask vs llama.cpp's llama-diffusion-cli, on the same GGUF
# files (issue 7's side-by-side): a ~1B LLaDA shape with random weights, written once by
# bench/make_random_llada.py and `unmask quantize` (F16, BF16, Q8_0 by default).
#
# One step = one forward over the whole canvas (CANVAS slots, no cache) with logits for
# every slot, which is what llama-diffusion-cli does per step. llama.cpp's figure is the
# "time per step" it prints (total / steps: includes its one cold first step and its
# sampling, also printed); unmask's is `unmask bench` (median of REPEAT forwards after a
# warm-up, no sampling) — the kernels against each other.
# A second unmask figure is a real decoding step with llama.cpp's schedule: `unmask run
# --decoder reference` (LLaDA's low-confidence remasking, as llama-diffusion-cli runs it)
# on the same CANVAS slots, no cache, BLOCK-slot blocks and the same steps per block
# (STEPS / (CANVAS / BLOCK)), total seconds / forwards: cold first step and sampling
# included, as in llama.cpp's figure. Its prompt is BLOCK token ids so the generated part
# (CANVAS - BLOCK) is whole blocks, as unmask's reference decoder requires; llama.cpp's
# step cost does not depend on its prompt (it always computes every slot and every
# logit row). unmask's step computes logits only for the masked slots of the current
# block (the only ones the rule can commit) and finishes the last layer only for them. The cold step costs llama.cpp about one extra second on the 1B
# F16 file here, so at 8 steps its figure is ~0.1 s per step above its steady state; the
# default of 32 steps keeps that under 0.03 s, so the comparison is warm against warm. The engines run alternately, ROUNDS times, so a busy machine
# slows both alike; the table gives medians over rounds and the load average seen.
#
# Usage: bench/vs_llamacpp.sh LLAMA_BUILD_DIR
#   LLAMA_BUILD_DIR: a llama.cpp CMake build dir holding bin/llama-diffusion-cli (built
#   elsewhere; this script never builds it).
# Environment (defaults): UNMASK (build/unmask), WORK (/tmp/unmask-vs-llamacpp: model
# folder + GGUFs, reused), TYPES ("f16 bf16 q8_0"), THREADS (2), CANVAS (128), STEPS (32),
# BLOCK (32), ROUNDS (3), REPEAT (3), SHAPE ("--hidden 2048 --layers 16 --heads 16
# --ffn 5632 --vocab 32768"), OUT (WORK/results.tsv).
set -euo pipefail

if [[ $# -ne 1 || ! -x "$1/bin/llama-diffusion-cli" ]]; then
  echo "usage: $0 LLAMA_BUILD_DIR   (with bin/llama-diffusion-cli built in it)" >&2
  exit 2
fi
LLAMA_CLI=$(cd "$1" && pwd)/bin/llama-diffusion-cli
REPO=$(cd "$(dirname "$0")/.." && pwd)
UNMASK=${UNMASK:-$REPO/build/unmask}
WORK=${WORK:-/tmp/unmask-vs-llamacpp}
TYPES=${TYPES:-f16 bf16 q8_0}
THREADS=${THREADS:-2}
CANVAS=${CANVAS:-128}
STEPS=${STEPS:-32}
BLOCK=${BLOCK:-32}
ROUNDS=${ROUNDS:-3}
REPEAT=${REPEAT:-3}
SHAPE=${SHAPE:---hidden 2048 --layers 16 --heads 16 --ffn 5632 --vocab 32768}
OUT=${OUT:-$WORK/results.tsv}
PROMPT="The capital of France is"
[[ -x "$UNMASK" ]] || { echo "$0: no unmask binary at $UNMASK (set UNMASK=...)" >&2; exit 2; }
(( CANVAS % BLOCK == 0 && STEPS % (CANVAS / BLOCK) == 0 )) ||
  { echo "$0: llama-diffusion-cli needs CANVAS % BLOCK == 0 and STEPS a multiple of CANVAS / BLOCK" >&2; exit 2; }
(( CANVAS > BLOCK )) || { echo "$0: the decoding-step run needs CANVAS > BLOCK (its prompt is one block)" >&2; exit 2; }

mkdir -p "$WORK"
if [[ ! -f "$WORK/llada/model.safetensors" ]]; then
  # shellcheck disable=SC2086  # SHAPE is a list of flags
  python3 "$REPO/bench/make_random_llada.py" "$WORK/llada" $SHAPE
fi
for t in $TYPES; do
  [[ -f "$WORK/llada-$t.gguf" ]] || "$UNMASK" quantize "$WORK/llada" "$WORK/llada-$t.gguf" --type "$t"
done

load1() { cut -d' ' -f1 /proc/loadavg; }

# Prints llama.cpp's seconds per step, sampling seconds per step, and the share of THREADS
# cores the process got over its whole run (load included, so a little below 1 even when
# idle) for one file. Its log is written by a background thread that can lose the last
# lines at exit, so a run whose "time per step" line is missing is repeated (5 tries).
# -lv 3: at the default verbosity it prints no INFO lines, the timing line included.
llama_step() {
  local log line try wall user sys
  for try in 1 2 3 4 5; do
    log=$(/usr/bin/time -f "%e %U %S" -o "$WORK/llama-time.txt" "$LLAMA_CLI" -m "$1" -p "$PROMPT" -t "$THREADS" -tb "$THREADS" -c "$CANVAS" -b "$CANVAS" -ub "$CANVAS" \
            --diffusion-steps "$STEPS" --diffusion-block-length "$BLOCK" --temp 0 --seed 1 -lv 3 2>&1) ||
      { echo "$log" | tail -20 >&2; echo "$0: llama-diffusion-cli failed on $1" >&2; exit 1; }
    line=$(echo "$log" | sed -n 's/.*time per step: \([0-9.]*\)ms, sampling time per step: \([0-9.]*\)ms.*/\1 \2/p')
    if [[ -n "$line" ]]; then
      read -r wall user sys < "$WORK/llama-time.txt"
      echo "$line $wall $user $sys" | awk -v t="$THREADS" '{ printf "%.4f %.4f %.2f\n", $1 / 1000, $2 / 1000, ($4 + $5) / (t * $3) }'
      return
    fi
    echo "$0: no timing line from llama-diffusion-cli (try $try)" >&2
  done
  exit 1
}

# Prints unmask's seconds per forward of CANVAS rows with logits for all of them, and the
# share of THREADS cores its process got meanwhile (CPU seconds / (threads x wall): well
# below 1 means a busy machine descheduled it).
unmask_step() {
  "$UNMASK" bench -m "$1" --tokens "$CANVAS" --threads "$THREADS" --repeat "$REPEAT" --json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    j = json.loads(line)
    if j.get("what") == "forward":
        print("%.4f %.2f" % (j["ms_per_forward"] / 1000, j["cpu_ms_per_forward"] / (j["ms_per_forward"] * j["threads"])))'
}

# Prints unmask's seconds per decoding step (see the header) and its CPU share.
unmask_gen_step() {
  local ids log line wall user sys
  ids=$(seq -s, 100 $((100 + BLOCK - 1)))
  log=$(/usr/bin/time -f "%e %U %S" -o "$WORK/unmask-time.txt" "$UNMASK" run -m "$1" --decoder reference --ids "$ids" \
          --gen-length $((CANVAS - BLOCK)) --block-length "$BLOCK" --steps $((STEPS * (CANVAS - BLOCK) / CANVAS)) \
          --threads "$THREADS" --no-live --print-ids 2>&1) ||
    { echo "$log" | tail -5 >&2; echo "$0: unmask run failed on $1" >&2; exit 1; }
  line=$(echo "$log" | sed -n 's/^unmask: \([0-9]*\) forwards, [0-9]* tokens in \([0-9.]*\) s.*/\1 \2/p')
  read -r wall user sys < "$WORK/unmask-time.txt"
  echo "$line $wall $user $sys" | awk -v t="$THREADS" '{ printf "%.4f %.2f\n", $2 / $1, ($4 + $5) / (t * $3) }'
}

echo -e "round\ttype\tengine\ts_per_step\tsampling_s_per_step\tcpu_share\tload1_before" > "$OUT"
for ((r = 1; r <= ROUNDS; ++r)); do
  for t in $TYPES; do
    f="$WORK/llada-$t.gguf"
    l=$(load1); read -r s samp share < <(llama_step "$f")
    echo -e "$r\t$t\tllama.cpp\t$s\t$samp\t$share\t$l" | tee -a "$OUT" >&2
    l=$(load1); read -r s share < <(unmask_step "$f")
    echo -e "$r\t$t\tunmask\t$s\t-\t$share\t$l" | tee -a "$OUT" >&2
    l=$(load1); read -r s share < <(unmask_gen_step "$f")
    echo -e "$r\t$t\tunmask-step\t$s\t-\t$share\t$l" | tee -a "$OUT" >&2
  done
done

# Table: medians over rounds; llama.cpp's F16 is the reference for the Done-when ratios.
# "x share" columns: seconds per step times the CPU share the process got, i.e. about what
# the step costs with its cores to itself (what a busy machine leaves comparable).
python3 - "$OUT" "$THREADS" "$CANVAS" "$STEPS" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def med(t, e, scaled=False):
    return statistics.median(float(r["s_per_step"]) * (float(r["cpu_share"]) if scaled else 1)
                             for r in rows if r["type"] == t and r["engine"] == e)
loads = [float(r["load1_before"]) for r in rows]
types = list(dict.fromkeys(r["type"] for r in rows))
print(f"threads {sys.argv[2]}, canvas {sys.argv[3]}, llama.cpp steps {sys.argv[4]}, rounds {len(rows) // (3 * len(types))}, "
      f"load average (1 min) {min(loads):.2f}..{max(loads):.2f}\n")
print("| GGUF type | llama.cpp s/step | unmask s/step | unmask speed-up | vs llama.cpp F16 "
      "| llama.cpp s x share | unmask s x share | speed-up x share |")
print("|---|---|---|---|---|---|---|---|")
ref = "f16" if "f16" in types else types[0]
for t in types:
    l, u = med(t, "llama.cpp"), med(t, "unmask")
    ls, us = med(t, "llama.cpp", True), med(t, "unmask", True)
    print(f"| {t.upper()} | {l:.3f} | {u:.3f} | {l / u:.2f}x | {med(ref, 'llama.cpp') / u:.2f}x "
          f"| {ls:.3f} | {us:.3f} | {ls / us:.2f}x |")
print("\nDecoding steps (unmask run --decoder reference, llama.cpp's schedule; see the script's header):\n")
print("| GGUF type | llama.cpp s/step | unmask s/step | unmask speed-up | vs llama.cpp F16 |")
print("|---|---|---|---|---|")
for t in types:
    l, u = med(t, "llama.cpp"), med(t, "unmask-step")
    print(f"| {t.upper()} | {l:.3f} | {u:.3f} | {l / u:.2f}x | {med(ref, 'llama.cpp') / u:.2f}x |")
EOF
