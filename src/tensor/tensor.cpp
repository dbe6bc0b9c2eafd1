#include "unmask/tensor.h"

#include <cmath>

#include "unmask/quant.h"

namespace unmask {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::I64: return 8;
    case DType::I32: return 4;
    case DType::U8: return 1;
    case DType::Q8_0: return sizeof(quant::BlockQ8_0);
    case DType::Q4_0: return sizeof(quant::BlockQ4_0);
    case DType::Q4_K: return sizeof(quant::BlockQ4_K);
    case DType::Q6_K: return sizeof(quant::BlockQ6_K);
  }
  return 0;
}

int64_t dtype_block_elems(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0: return 32;
    case DType::Q4_K:
    case DType::Q6_K: return 256;
    default: return 1;
  }
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
    case DType::Q4_K: return "Q4_K";
    case DType::Q6_K: return "Q6_K";
  }
  return "?";
}

bool dtype_from_name(std::string_view name, DType* out) {
  static constexpr std::pair<std::string_view, DType> kNames[] = {
      {"F32", DType::F32}, {"BF16", DType::BF16}, {"F16", DType::F16},
      {"I64", DType::I64}, {"I32", DType::I32},   {"U8", DType::U8}};
  for (auto& [n, t] : kNames)
    if (n == name) {
      *out = t;
      return true;
    }
  return false;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const int exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ffu;
  float magnitude;
  if (exp == 0)
    magnitude = std::ldexp(float(mant), -24);  // subnormal
  else if (exp == 31)
    magnitude = mant ? NAN : INFINITY;
  else
    magnitude = std::ldexp(float(mant | 0x400u), exp - 25);
  uint32_t u;
  std::memcpy(&u, &magnitude, 4);
  u |= sign;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::string shape_string(const TensorView& t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(t.shape[size_t(i)]);
  }
  return s + "]";
}

float load_as_f32(const TensorView& t, int64_t i) {
  switch (t.dtype) {
    case DType::F32: return t.f32()[i];
    case DType::BF16: return bf16_to_f32(t.u16()[i]);
    case DType::F16: return f16_to_f32(t.u16()[i]);
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K: {
      const int64_t block = dtype_block_elems(t.dtype);
      float values[256];
      quant::dequantize_row(t.dtype, static_cast<const uint8_t*>(t.data) + size_t(i / block) * dtype_size(t.dtype),
                            values, block);
      return values[i % block];
    }
    default: return NAN;
  }
}

}  // namespace unmask
