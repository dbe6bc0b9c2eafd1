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

enum class DType : uint8_t { F32, BF16, F16, I64, I32, U8 };

size_t dtype_size(DType t);
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
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  bool empty() const { return data == nullptr; }
  const float* f32() const { return static_cast<const float*>(data); }
  const uint16_t* u16() const { return static_cast<const uint16_t*>(data); }
  // Row r of a 2-D view, as raw bytes.
  const uint8_t* row_bytes(int64_t r) const {
    return static_cast<const uint8_t*>(data) + size_t(r) * size_t(shape[1]) * dtype_size(dtype);
  }
};

std::string shape_string(const TensorView& t);  // "[64, 512]"

// Reads element i (flat index) of an F32 / BF16 / F16 view as float.
float load_as_f32(const TensorView& t, int64_t i);

}  // namespace unmask
