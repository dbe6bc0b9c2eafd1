// libFuzzer target: arbitrary bytes -> unmask::parse_safetensors.
// fuzz-sources: src/io/safetensors.cpp src/tensor/tensor.cpp src/quant/quant.cpp
//
// The parser may reject any input, but only with unmask::Error (anything else
// escapes and libFuzzer reports it), and what it accepts must keep the promises
// TensorStore relies on to hand out views into the mapping: every span lies in the
// data section, matches shape x dtype size exactly, and no two spans overlap.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "unmask/error.h"
#include "unmask/safetensors.h"

namespace {

[[noreturn]] void broken_promise() { std::abort(); }

void check_entries(const std::vector<unmask::SafetensorsEntry>& entries, size_t size, size_t data_offset) {
  if (data_offset < 8 || data_offset > size) broken_promise();
  const unsigned __int128 data_size = size - data_offset;
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const auto& e : entries) {
    if (e.shape.size() > size_t(unmask::kMaxDims) || e.begin > e.end || e.end > data_size) broken_promise();
    // Exact arithmetic in 128 bits, so a wrapped 64-bit product cannot hide.
    unsigned __int128 bytes = unmask::dtype_size(e.dtype);
    for (int64_t d : e.shape) {
      if (d < 0) broken_promise();
      bytes *= uint64_t(d);
      if (bytes > data_size) break;  // already wrong; keeps the product from overflowing
    }
    if (bytes != e.end - e.begin) broken_promise();
    spans.emplace_back(e.begin, e.end);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second && spans[i].first != spans[i].second &&
        spans[i - 1].first != spans[i - 1].second)
      broken_promise();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    size_t data_offset = 0;
    const auto entries = unmask::parse_safetensors(data, size, "fuzz", &data_offset);
    check_entries(entries, size, data_offset);
  } catch (const unmask::Error&) {
    // Rejected cleanly: the expected outcome for most inputs.
  }
  return 0;
}
