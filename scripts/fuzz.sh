#!/usr/bin/env bash
# Builds and runs every libFuzzer target fuzz/fuzz_*.cpp for a bounded time each
# (FUZZ_SECONDS, default 60). Exits non-zero if a target fails to build or finds a
# crash, leak, sanitizer report, timeout or out-of-memory; reproducers are left in
# build-fuzz/artifacts/.
#
# A target lists the library sources it needs in a comment line
#   // fuzz-sources: src/io/safetensors.cpp src/tensor/tensor.cpp
# and may add linker flags with  // fuzz-libs: -lpcre2-8
# Seeds come from fuzz/corpus/<name>/ (name = file name without "fuzz_"), and an
# optional dictionary from fuzz/fuzz_<name>.dict. New inputs found while fuzzing go
# to fuzz/corpus-run/<name>/ (git-ignored), never into the seed corpus.
#
# Usage: scripts/fuzz.sh [target-name ...]   (default: all targets)
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
CXX_FUZZ="${FUZZ_CXX:-clang++}"
OUT=build-fuzz
mkdir -p "$OUT/artifacts"

if ! command -v "$CXX_FUZZ" >/dev/null; then
  echo "fuzz: $CXX_FUZZ not found (scripts/setup.sh installs clang)" >&2
  exit 1
fi

targets=()
if (($#)); then
  for name in "$@"; do targets+=("fuzz/fuzz_${name#fuzz_}.cpp"); done
else
  targets=(fuzz/fuzz_*.cpp)
fi

# The value of a "// <key>: ..." comment line in a target's source.
directive() { sed -n "s|^// $2:[[:space:]]*||p" "$1" | head -n 1; }

failed=()
for src in "${targets[@]}"; do
  [ -f "$src" ] || { echo "fuzz: no such target $src" >&2; exit 1; }
  name="$(basename "$src" .cpp)"
  short="${name#fuzz_}"
  sources="$(directive "$src" fuzz-sources)"
  libs="$(directive "$src" fuzz-libs)"
  bin="$OUT/$name"
  echo "fuzz: building $name"
  # shellcheck disable=SC2086  # the directive lists are word lists on purpose
  "$CXX_FUZZ" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Iinclude -Isrc "$src" $sources -o "$bin" $libs

  run_corpus="fuzz/corpus-run/$short"
  mkdir -p "$run_corpus"
  seeds=()
  [ -d "fuzz/corpus/$short" ] && seeds=("fuzz/corpus/$short")
  dict=()
  [ -f "fuzz/$name.dict" ] && dict=("-dict=fuzz/$name.dict")

  echo "fuzz: running $name for ${SECONDS_PER_TARGET}s"
  # -timeout: one input taking > 10 s counts as a hang; -rss_limit_mb bounds memory.
  if ! "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
      -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$name-" "${dict[@]}" \
      "$run_corpus" "${seeds[@]}" 2>"$OUT/$name.log"; then
    tail -n 60 "$OUT/$name.log" >&2
    failed+=("$name")
  else
    grep -E "^stat::number_of_executed_units|^Done" "$OUT/$name.log" || true
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (reproducers in $OUT/artifacts/)" >&2
  exit 1
fi
echo "fuzz: all targets ran ${SECONDS_PER_TARGET}s without a crash"
