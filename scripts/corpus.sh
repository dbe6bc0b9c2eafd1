#!/usr/bin/env bash
# Builds the default model's corpus: the Python 3.11 standard library `.py` files that
# Debian's libpython3.11-stdlib and libpython3.11-minimal packages install (so every
# Debian machine with python3 has the same text), without the test code.
#
#   bash scripts/corpus.sh [OUT_DIR]     (default build-corpus/)
#
# Writes OUT_DIR/train.txt, OUT_DIR/heldout.txt (files concatenated in byte order of
# their path), OUT_DIR/{train,heldout}.files (the paths) and OUT_DIR/baselines.json
# (gzip -9 and xz -9 bits/byte of the held-out text). Deterministic:
#   files    dpkg's list of both packages, *.py under /usr/lib/python3.11, minus any path
#            with a test/, tests/ or idle_test/ folder and test_*.py files
#   order    LC_ALL=C sort of the paths
#   split    held out when the first 8 hex digits of sha256(path relative to
#            /usr/lib/python3.11) are 0 mod 20 (~5% of the files, independent of contents)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-build-corpus}"
ROOT=/usr/lib/python3.11
command -v dpkg >/dev/null || { echo "corpus: needs dpkg (Debian)" >&2; exit 1; }
for pkg in libpython3.11-stdlib libpython3.11-minimal; do
  dpkg -L "$pkg" >/dev/null 2>&1 || { echo "corpus: package $pkg is not installed (apt-get install python3.11)" >&2; exit 1; }
done
for tool in gzip xz sha256sum; do
  command -v "$tool" >/dev/null || { echo "corpus: needs $tool (apt-get install gzip xz-utils coreutils)" >&2; exit 1; }
done
mkdir -p "$OUT"
: > "$OUT/train.files"
: > "$OUT/heldout.files"
dpkg -L libpython3.11-stdlib libpython3.11-minimal | grep "^$ROOT/.*\.py\$" \
  | grep -v -E '/(test|tests|idle_test)/|/test_[^/]*\.py$' | LC_ALL=C sort -u \
  | while read -r path; do
      [ -f "$path" ] || continue
      rel="${path#"$ROOT"/}"
      h=$(printf '%s' "$rel" | sha256sum | cut -c1-8)
      if (( 16#$h % 20 == 0 )); then echo "$path" >> "$OUT/heldout.files"; else echo "$path" >> "$OUT/train.files"; fi
    done
for split in train heldout; do
  : > "$OUT/$split.txt"
  while read -r path; do cat "$path" >> "$OUT/$split.txt"; done < "$OUT/$split.files"
done
bpb() {  # bits per byte of compressed stdin relative to $1 bytes
  awk -v c="$(cat | wc -c)" -v n="$1" 'BEGIN { printf "%.4f", 8 * c / n }'
}
held_bytes=$(wc -c < "$OUT/heldout.txt")
gz=$(gzip -9 -c "$OUT/heldout.txt" | bpb "$held_bytes")
xzb=$(xz -9 -c "$OUT/heldout.txt" | bpb "$held_bytes")
printf '{"heldout_bytes": %d, "gzip_9_bits_per_byte": %s, "xz_9_bits_per_byte": %s}\n' \
  "$held_bytes" "$gz" "$xzb" > "$OUT/baselines.json"
printf 'corpus: train   %4d files %10d bytes  %s\n' "$(wc -l < "$OUT/train.files")" "$(wc -c < "$OUT/train.txt")" "$OUT/train.txt"
printf 'corpus: heldout %4d files %10d bytes  %s\n' "$(wc -l < "$OUT/heldout.files")" "$held_bytes" "$OUT/heldout.txt"
printf 'corpus: heldout gzip -9 %s bits/byte, xz -9 %s bits/byte\n' "$gz" "$xzb"
