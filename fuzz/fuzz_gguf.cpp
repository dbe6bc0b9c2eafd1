// libFuzzer target: arbitrary bytes -> unmask::parse_gguf, then every accepted tensor's
// rows through the scalar dequantize.
// fuzz-sources: src/io/gguf.cpp src/io/safetensors.cpp src/tensor/tensor.cpp src/quant/quant.cpp
//
// The parser may reject any input, but only with unmask::Error (anything else escapes
// and libFuzzer reports it). What it accepts must keep the promises GgufFile relies on
// to hand out views into the mapping: the data section starts inside the file, every
// tensor lies inside it with exactly numel x type size bytes, rows are whole blocks and
// no two tensors overlap. Dequantizing those bytes must then stay in bounds (ASan).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "unmask/error.h"
#include "unmask/gguf.h"
#include "unmask/quant.h"

namespace {

[[noreturn]] void broken_promise() { std::abort(); }

void check_and_dequantize(const unmask::GgufHeader& h, const uint8_t* data, size_t size) {
  if (h.data_offset > size) broken_promise();
  const uint64_t data_size = size - h.data_offset;
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  std::vector<float> row;
  for (const auto& t : h.tensors) {
    const int64_t block = unmask::dtype_block_elems(t.dtype);
    if (t.ndim < 1 || t.ndim > unmask::kMaxDims || t.ne[0] % block != 0) broken_promise();
    // Exact arithmetic in 128 bits, so a wrapped 64-bit product cannot hide.
    unsigned __int128 bytes = unmask::dtype_size(t.dtype) * (unsigned __int128)(t.ne[0] / block);
    for (int d = 1; d < t.ndim; ++d) bytes *= (unsigned __int128)t.ne[size_t(d)];
    if (bytes != t.nbytes || t.offset > data_size || t.nbytes > data_size - t.offset) broken_promise();
    if (t.offset % h.alignment != 0) broken_promise();
    spans.emplace_back(t.offset, t.offset + t.nbytes);
    const uint8_t* base = data + h.data_offset + t.offset;
    const size_t row_bytes = unmask::dtype_row_bytes(t.dtype, t.ne[0]);
    row.resize(size_t(t.ne[0]));
    for (size_t at = 0; at + row_bytes <= t.nbytes && row_bytes > 0; at += row_bytes)
      unmask::quant::dequantize_row(t.dtype, base + at, row.data(), t.ne[0]);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second) broken_promise();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const unmask::GgufHeader h = unmask::parse_gguf(data, size, "fuzz");
    check_and_dequantize(h, data, size);
  } catch (const unmask::Error&) {
    // Rejected cleanly: the expected outcome for most inputs.
  }
  return 0;
}
