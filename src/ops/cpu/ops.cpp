// Element-wise, normalisation, RoPE and attention ops on f32 activations.
// These are a small fraction of a forward's FLOPs next to the weight matmuls;
// attention routes its two big products through ops::matmul.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/matmul.h"
#include "ops/cpu/vec_math.h"
#include "ops/ops.h"
#include "unmask/quant.h"

namespace unmask::ops {

namespace {
// Element-wise work below this many elements runs on the calling thread: a fork/join costs
// a few microseconds, ~16K simple float ops. Above it both halves of a batched step's rows
// (e.g. 135 rows x 256) are worth a thread each. Results do not depend on it: every element
// is computed the same way on any thread.
constexpr int64_t kParallelElements = 16384;
}  // namespace

void round_to_bf16(float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) x[i] = unmask::round_to_bf16(x[i]);
}

void rms_norm(const float* x, int64_t n, int64_t d, const TensorView& w, float eps, bool bf16, float* y) {
  std::vector<float> weight(static_cast<size_t>(d));
  for (int64_t j = 0; j < d; ++j) weight[size_t(j)] = load_as_f32(w, j);
#pragma omp parallel for schedule(static) if (n * d > kParallelElements)
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    // torch: x.pow(2).mean(-1) in f32; summation order differs by ~1 ulp only.
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += double(xr[j]) * xr[j];
    const float variance = float(ss / double(d));
    const float inv = 1.0f / std::sqrt(variance + eps);
    for (int64_t j = 0; j < d; ++j) {
      float v = xr[j] * inv;
      if (bf16) v = unmask::round_to_bf16(v);
      v *= weight[size_t(j)];
      yr[j] = bf16 ? unmask::round_to_bf16(v) : v;
    }
  }
}

RopeTable rope_table(const int32_t* positions, int64_t n, const RopeParams& p) {
  RopeTable t;
  t.half = p.rotary_dim / 2;
  const size_t half = size_t(t.half);
  // inv_freq exactly as torch: 1 / theta ** (arange(0, dim, 2).float() / dim), in f32.
  std::vector<float> inv_freq(half);
  for (size_t j = 0; j < half; ++j) {
    const float exponent = float(2 * j) / float(p.rotary_dim);
    inv_freq[j] = 1.0f / std::pow(float(p.theta), exponent);
  }
  t.cos.resize(size_t(n) * half);
  t.sin.resize(size_t(n) * half);
#pragma omp parallel for schedule(static) if (n * int64_t(half) > kParallelElements / 8)
  for (int64_t r = 0; r < n; ++r)
    for (size_t j = 0; j < half; ++j) {
      const float angle = float(positions[r]) * inv_freq[j];
      float c = std::cos(angle), s = std::sin(angle);
      if (p.rounding == RopeRounding::kCosSinBf16) {
        c = unmask::round_to_bf16(c);
        s = unmask::round_to_bf16(s);
      }
      t.cos[size_t(r) * half + j] = c;
      t.sin[size_t(r) * half + j] = s;
    }
  return t;
}

void rope_neox(float* x, int64_t n, const RopeTable& t, const RopeParams& p) {
  const int half = t.half;
  const int64_t row_stride = int64_t(p.heads) * p.head_dim;
#pragma omp parallel for schedule(static) if (n * row_stride > kParallelElements)
  for (int64_t r = 0; r < n; ++r) {
    const float* cos_t = t.cos.data() + r * half;
    const float* sin_t = t.sin.data() + r * half;
    for (int h = 0; h < p.heads; ++h) {
      float* v = x + r * row_stride + int64_t(h) * p.head_dim;
      for (int j = 0; j < half; ++j) {
        const float a = v[j], b = v[j + half];
        float lo, hi;
        if (p.rounding == RopeRounding::kCosSinBf16) {
          // q*cos + rotate_half(q)*sin with every bf16 tensor op rounded.
          lo = unmask::round_to_bf16(unmask::round_to_bf16(a * cos_t[j]) + unmask::round_to_bf16(-b * sin_t[j]));
          hi = unmask::round_to_bf16(unmask::round_to_bf16(b * cos_t[j]) + unmask::round_to_bf16(a * sin_t[j]));
        } else {
          lo = a * cos_t[j] - b * sin_t[j];
          hi = b * cos_t[j] + a * sin_t[j];
          if (p.rounding == RopeRounding::kRotateF32) {
            lo = unmask::round_to_bf16(lo);
            hi = unmask::round_to_bf16(hi);
          }
        }
        v[j] = lo;
        v[j + half] = hi;
      }
    }
  }
}

void rope_neox(float* x, int64_t n, const int32_t* positions, const RopeParams& p) {
  rope_neox(x, n, rope_table(positions, n, p), p);
}

void silu_mul(float* gate, const float* up, int64_t n, bool bf16) {
  // Chunks of whole vectors; every element is computed the same way on any thread.
  constexpr int64_t kChunk = 4096;
  const Isa isa = best_isa();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > kParallelElements)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    silu_mul_rows(isa, gate + begin, up + begin, std::min(kChunk, n - begin), bf16);
  }
}

void add_inplace(float* x, const float* y, int64_t n, bool bf16) {
#pragma omp parallel for schedule(static) if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) x[i] = bf16 ? unmask::round_to_bf16(x[i] + y[i]) : x[i] + y[i];
}

void embedding_lookup(const TensorView& table, const int32_t* ids, int64_t n, float* out) {
  const int64_t d = table.dim(1);
  if (dtype_is_quantized(table.dtype)) {  // GGUF tables: dequantize whole rows of blocks
    for (int64_t r = 0; r < n; ++r) quant::dequantize_row(table.dtype, table.row_bytes(ids[r]), out + r * d, d);
    return;
  }
  for (int64_t r = 0; r < n; ++r) {
    const int64_t base = int64_t(ids[r]) * d;
    for (int64_t j = 0; j < d; ++j) out[r * d + j] = load_as_f32(table, base + j);
  }
}

}  // namespace unmask::ops
