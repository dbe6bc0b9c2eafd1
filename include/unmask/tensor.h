// unmask/tensor.h — element types and non-owning tensor views.
//
// A TensorView borrows its bytes (from an mmapped file, an arena, a std::vector):
// it never owns or frees them, and is only valid while the owner lives.
// Views are dense row-major; shape[0] is the slowest dimension.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace unmask {

// Q8_0 ... Q6_K: ggml's block-quantized types (include/unmask/quant.h has the layouts).
// A row of a block type holds a whole number of blocks; only GGUF files carry them.
enum class DType : uint8_t { F32, BF16, F16, I64, I32, U8, Q8_0, Q4_0, Q4_K, Q6_K };

size_t dtype_size(DType t);                // bytes per element, or per block for block types
int64_t dtype_block_elems(DType t);        // elements per block: 1, 32 (Q8_0, Q4_0), 256 (Q4_K, Q6_K)
inline bool dtype_is_quantized(DType t) { return dtype_block_elems(t) > 1; }
// Bytes of n consecutive elements (n a multiple of the block size for block types).
inline size_t dtype_row_bytes(DType t, int64_t n) { return size_t(n / dtype_block_elems(t)) * dtype_size(t); }
std::string_view dtype_name(DType t);          // "F32", "BF16", ... (safetensors spelling)
bool dtype_from_name(std::string_view name, DType* out);

// bf16 <-> f32. Narrowing rounds to nearest even (as torch does); NaN stays NaN.
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float round_to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }
float f16_to_f32(uint16_t h);

constexpr int kMaxDims = 4;

struct TensorView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};

  int64_t dim(int i) const { return shape[size_t(i)]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[size_t(i)];
    return n;
  }
  size_t nbytes() const { return dtype_row_bytes(dtype, numel()); }
  bool empty() const { return data == nullptr; }
  const float* f32() const { return static_cast<const float*>(data); }
  const uint16_t* u16() const { return static_cast<const uint16_t*>(data); }
  // Row r of a 2-D view, as raw bytes.
  const uint8_t* row_bytes(int64_t r) const {
    return static_cast<const uint8_t*>(data) + size_t(r) * dtype_row_bytes(dtype, shape[1]);
  }
};

std::string shape_string(const TensorView& t);  // "[64, 512]"

// Reads element i (flat index) of a float or block-quantized view as float (a block
// type dequantizes the whole block: use quant.h's dequantize_row for rows).
float load_as_f32(const TensorView& t, int64_t i);

}  // namespace unmask
