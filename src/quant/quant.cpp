// Scalar dequantize / quantize of ggml's block formats (layouts in unmask/quant.h).
//
// The quantizers are unmask's own, simple and bounded (no iterative search as
// llama-quantize does): per (sub-)block scales are chosen so the block's extreme maps
// to the end of the integer range, then the super-block scales are rounded *up* when
// stored, so a stored step is never smaller than the one wanted and values can exceed
// the integer range only at the single clamped end (the bounds in quant.h).
#include "unmask/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "unmask/error.h"

namespace unmask {

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
  if (a < 0x38800000u) {                        // below 2^-14: f16 subnormal or zero
    float mag;
    std::memcpy(&mag, &a, 4);
    // mag * 2^24 is exact; nearbyint rounds half to even (the default mode). A result of
    // 1024 is the smallest normal's encoding, so the carry is right.
    return sign | uint16_t(std::nearbyint(mag * 16777216.0f));
  }
  uint32_t r = a - 0x38000000u;  // exponent bias 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);
  return sign | uint16_t(r >> 13);
}

namespace quant {

namespace {

// IEEE half -> float by bit rebias (exact; tensor.h's f16_to_f32 goes through ldexp,
// too slow for the per-block scales of a matmul's weight panels).
float half(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, em = h & 0x7fffu;
  if (em < 0x0400u) {  // zero or subnormal: em * 2^-24 is exact in f32
    const float f = float(em) * 5.9604644775390625e-8f;
    return sign ? -f : f;
  }
  // Normal (exponent 15 -> 127 bias: + 112 << 10) or inf / NaN (exponent all ones).
  const uint32_t bits = sign | (em >= 0x7c00u ? 0x7f800000u | ((em & 0x3ffu) << 13) : (em + 0x1c000u) << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The smallest f16 >= v (v >= 0, finite, below 65504): a stored scale never shrinks.
uint16_t f16_at_least(float v) {
  uint16_t h = f32_to_f16(v);
  if (f16_to_f32(h) < v) ++h;  // positive halves are ordered like their bit patterns
  return h;
}

int clamp_int(float v, int lo, int hi) { return int(std::clamp(std::nearbyint(v), float(lo), float(hi))); }

void dequantize_q8_0(const BlockQ8_0& b, float* y) {
  const float d = half(b.d);
  for (int j = 0; j < 32; ++j) y[j] = d * float(b.qs[j]);
}

void dequantize_q4_0(const BlockQ4_0& b, float* y) {
  const float d = half(b.d);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float((b.qs[j] & 0xf) - 8);
    y[j + 16] = d * float((b.qs[j] >> 4) - 8);
  }
}

void dequantize_q4_k(const BlockQ4_K& b, float* y) {
  const float d = half(b.d), dmin = half(b.dmin);
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    q4_k_scale_min(b.scales, s, &sc, &m);
    const uint8_t* q = b.qs + 32 * (s / 2);
    const int shift = (s % 2) * 4;
    for (int l = 0; l < 32; ++l) y[32 * s + l] = d * float(sc) * float((q[l] >> shift) & 0xf) - dmin * float(m);
  }
}

// Q6_K value e of a block: 4 low bits in ql, 2 high bits in qh. Within each half of
// 128 values, quarter r/32 selects ql[l] or ql[l+32] (low or high nibble) and the bit
// pair 2*quarter of qh[l].
struct Q6Pos {
  int ql, ql_shift, qh, qh_shift;
};
Q6Pos q6_pos(int e) {
  const int h = e / 128, quarter = (e % 128) / 32, l = e % 32;
  return {64 * h + l + (quarter & 1) * 32, (quarter >> 1) * 4, 32 * h + l, 2 * quarter};
}

// The 6-bit code q (0..63) of value e; the value is d * scales[e / 16] * (q - 32).
int q6_code(const BlockQ6_K& b, int e) {
  const Q6Pos p = q6_pos(e);
  return ((b.ql[p.ql] >> p.ql_shift) & 0xf) | (((b.qh[p.qh] >> p.qh_shift) & 3) << 4);
}

void dequantize_q6_k(const BlockQ6_K& b, float* y) {
  const float d = half(b.d);
  for (int e = 0; e < 256; ++e) y[e] = d * float(b.scales[e / 16]) * float(q6_code(b, e) - 32);
}

// The value of largest magnitude (its sign matters: it maps to the range end -2^(bits-1)).
float signed_extreme(const float* x, int n) {
  float v = 0;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > std::fabs(v)) v = x[j];
  return v;
}

void quantize_q8_0(const float* x, BlockQ8_0& b) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  b.d = f32_to_f16(amax / 127);
  const float d = half(b.d);
  for (int j = 0; j < 32; ++j) b.qs[j] = int8_t(d == 0 ? 0 : clamp_int(x[j] / d, -127, 127));
}

void quantize_q4_0(const float* x, BlockQ4_0& b) {
  b.d = f32_to_f16(signed_extreme(x, 32) / -8);
  const float d = half(b.d);
  uint8_t q[32];
  for (int j = 0; j < 32; ++j) q[j] = uint8_t(d == 0 ? 8 : clamp_int(x[j] / d + 8, 0, 15));
  for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(q[j] | (q[j + 16] << 4));
}

void quantize_q4_k(const float* x, BlockQ4_K& b) {
  float step[8], lift[8];  // wanted per sub-block: x ~= step * q - lift, q in [0, 15]
  float max_step = 0, max_lift = 0;
  for (int s = 0; s < 8; ++s) {
    float lo = 0, hi = -INFINITY;
    for (int l = 0; l < 32; ++l) {
      lo = std::min(lo, x[32 * s + l]);
      hi = std::max(hi, x[32 * s + l]);
    }
    step[s] = (hi - lo) / 15;
    lift[s] = -lo;
    max_step = std::max(max_step, step[s]);
    max_lift = std::max(max_lift, lift[s]);
  }
  b.d = f16_at_least(max_step / 63);
  b.dmin = f16_at_least(max_lift / 63);
  const float d = half(b.d), dmin = half(b.dmin);
  uint8_t sc[8], m[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = uint8_t(d == 0 ? 0 : std::min(63.0f, std::ceil(step[s] / d)));
    m[s] = uint8_t(dmin == 0 ? 0 : std::min(63.0f, std::ceil(lift[s] / dmin)));
  }
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    b.scales[j + 8] = uint8_t((sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4));
  }
  std::memset(b.qs, 0, sizeof b.qs);
  for (int s = 0; s < 8; ++s) {
    const float S = d * float(sc[s]), M = dmin * float(m[s]);
    for (int l = 0; l < 32; ++l) {
      const int q = S == 0 ? 0 : clamp_int((x[32 * s + l] + M) / S, 0, 15);
      b.qs[32 * (s / 2) + l] |= uint8_t(q << ((s % 2) * 4));
    }
  }
}

void quantize_q6_k(const float* x, BlockQ6_K& b) {
  float want[16];  // per sub-block step: the extreme maps to -32
  float max_abs = 0;
  for (int s = 0; s < 16; ++s) {
    want[s] = signed_extreme(x + 16 * s, 16) / -32;
    max_abs = std::max(max_abs, std::fabs(want[s]));
  }
  b.d = f16_at_least(max_abs / 127);
  const float d = half(b.d);
  std::memset(b.ql, 0, sizeof b.ql);
  std::memset(b.qh, 0, sizeof b.qh);
  for (int s = 0; s < 16; ++s) {
    const float mag = d == 0 ? 0 : std::min(127.0f, std::ceil(std::fabs(want[s]) / d));
    b.scales[s] = int8_t(want[s] < 0 ? -mag : mag);
    const float S = d * float(b.scales[s]);
    for (int l = 0; l < 16; ++l) {
      const int e = 16 * s + l;
      const int q = (S == 0 ? 0 : clamp_int(x[e] / S, -32, 31)) + 32;
      const Q6Pos p = q6_pos(e);
      b.ql[p.ql] |= uint8_t((q & 0xf) << p.ql_shift);
      b.qh[p.qh] |= uint8_t((q >> 4) << p.qh_shift);
    }
  }
}

template <class Block, void (*fn)(const Block&, float*)>
void dequantize_blocks(const void* src, float* y, int64_t n, int64_t block) {
  const auto* bytes = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / block; ++i) {
    Block b;  // copied: the source may be only 2-byte aligned inside a larger mapping
    std::memcpy(&b, bytes + size_t(i) * sizeof(Block), sizeof(Block));
    fn(b, y + i * block);
  }
}

template <class Block, void (*fn)(const float*, Block&)>
void quantize_blocks(const float* x, void* dst, int64_t n, int64_t block) {
  auto* bytes = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / block; ++i) {
    Block b;
    fn(x + i * block, b);
    std::memcpy(bytes + size_t(i) * sizeof(Block), &b, sizeof(Block));
  }
}

void check_row(DType t, int64_t n, const char* what) {
  check(n >= 0 && n % dtype_block_elems(t) == 0, std::string(what) + ": " + std::to_string(n) + " values of " +
                                                      std::string(dtype_name(t)) + " is not a whole number of blocks");
}

}  // namespace

void q4_k_scale_min(const uint8_t* q, int s, uint8_t* scale, uint8_t* min) {
  if (s < 4) {
    *scale = q[s] & 63;
    *min = q[s + 4] & 63;
  } else {
    *scale = uint8_t((q[s + 4] & 0xf) | ((q[s - 4] >> 6) << 4));
    *min = uint8_t((q[s + 4] >> 4) | ((q[s] >> 6) << 4));
  }
}

void dequantize_row(DType t, const void* src, float* y, int64_t n) {
  check_row(t, n, "dequantize_row");
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::F32: std::memcpy(y, src, size_t(n) * 4); return;
    case DType::F16:
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        y[i] = t == DType::F16 ? half(h) : bf16_to_f32(h);
      }
      return;
    case DType::Q8_0: dequantize_blocks<BlockQ8_0, dequantize_q8_0>(src, y, n, 32); return;
    case DType::Q4_0: dequantize_blocks<BlockQ4_0, dequantize_q4_0>(src, y, n, 32); return;
    case DType::Q4_K: dequantize_blocks<BlockQ4_K, dequantize_q4_k>(src, y, n, 256); return;
    case DType::Q6_K: dequantize_blocks<BlockQ6_K, dequantize_q6_k>(src, y, n, 256); return;
    default: throw Error("dequantize_row: " + std::string(dtype_name(t)) + " is not a float or block type");
  }
}

void int8_block(DType t, const void* row, int64_t b, Int8Block* out) {
  const auto* bytes = static_cast<const uint8_t*>(row);
  out->min = 0.0f;
  switch (t) {
    case DType::Q8_0: {
      BlockQ8_0 blk;
      std::memcpy(&blk, bytes + size_t(b) * sizeof blk, sizeof blk);
      std::memcpy(out->v, blk.qs, 32);
      out->scale[0] = out->scale[1] = half(blk.d);
      return;
    }
    case DType::Q4_0: {
      BlockQ4_0 blk;
      std::memcpy(&blk, bytes + size_t(b) * sizeof blk, sizeof blk);
      for (int j = 0; j < 16; ++j) {
        out->v[j] = int8_t((blk.qs[j] & 0xf) - 8);
        out->v[j + 16] = int8_t((blk.qs[j] >> 4) - 8);
      }
      out->scale[0] = out->scale[1] = half(blk.d);
      return;
    }
    case DType::Q4_K: {
      BlockQ4_K blk;
      std::memcpy(&blk, bytes + size_t(b / 8) * sizeof blk, sizeof blk);
      const int s = int(b % 8);
      uint8_t sc, m;
      q4_k_scale_min(blk.scales, s, &sc, &m);
      const uint8_t* q = blk.qs + 32 * (s / 2);
      const int shift = (s % 2) * 4;
      for (int l = 0; l < 32; ++l) out->v[l] = int8_t((q[l] >> shift) & 0xf);
      out->scale[0] = out->scale[1] = half(blk.d) * float(sc);
      out->min = half(blk.dmin) * float(m);
      return;
    }
    case DType::Q6_K: {
      BlockQ6_K blk;
      std::memcpy(&blk, bytes + size_t(b / 8) * sizeof blk, sizeof blk);
      const int e0 = int(b % 8) * 32;
      for (int l = 0; l < 32; ++l) out->v[l] = int8_t(q6_code(blk, e0 + l) - 32);
      const float d = half(blk.d);
      out->scale[0] = d * float(blk.scales[e0 / 16]);
      out->scale[1] = d * float(blk.scales[e0 / 16 + 1]);
      return;
    }
    default: throw Error("int8_block: " + std::string(dtype_name(t)) + " is not Q8_0, Q4_0, Q4_K or Q6_K");
  }
}

void quantize_row(DType t, const float* x, void* dst, int64_t n) {
  check_row(t, n, "quantize_row");
  auto* bytes = static_cast<uint8_t*>(dst);
  switch (t) {
    case DType::F32: std::memcpy(dst, x, size_t(n) * 4); return;
    case DType::F16:
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = t == DType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
        std::memcpy(bytes + 2 * i, &h, 2);
      }
      return;
    case DType::Q8_0: quantize_blocks<BlockQ8_0, quantize_q8_0>(x, dst, n, 32); return;
    case DType::Q4_0: quantize_blocks<BlockQ4_0, quantize_q4_0>(x, dst, n, 32); return;
    case DType::Q4_K: quantize_blocks<BlockQ4_K, quantize_q4_k>(x, dst, n, 256); return;
    case DType::Q6_K: quantize_blocks<BlockQ6_K, quantize_q6_k>(x, dst, n, 256); return;
    default: throw Error("quantize_row: " + std::string(dtype_name(t)) + " is not a float or block type");
  }
}

}  // namespace quant
}  // namespace unmask
