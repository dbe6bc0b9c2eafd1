// ops/cpu/matmul.cpp — ISA dispatch, thread-count choice, the scalar reference and the
// portable scalar kernel (CPUs without AVX2).
#include "ops/cpu/matmul.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ops/cpu/qmatmul.h"
#include "ops/ops.h"
#include "unmask/error.h"
#include "unmask/quant.h"

namespace unmask::ops {

namespace {

bool cpu_has(const char* feature_set) {
  __builtin_cpu_init();
  const std::string s = feature_set;
  if (s == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("fma");
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

void check_args(const float* x, int64_t n, const TensorView& w, float* y) {
  check(w.ndim == 2, "matmul: weight must be 2-D, got " + shape_string(w));
  check(w.dtype == DType::F32 || w.dtype == DType::BF16 || w.dtype == DType::F16 || dtype_is_quantized(w.dtype),
        "matmul: weight dtype must be F32, BF16, F16 or a block type, got " + std::string(dtype_name(w.dtype)));
  check(w.ndim != 2 || w.dim(1) % dtype_block_elems(w.dtype) == 0,
        "matmul: " + std::string(dtype_name(w.dtype)) + " rows of " + std::to_string(w.dim(1)) + " are not whole blocks");
  check(n >= 0, "matmul: negative row count");
  check(n == 0 || (x != nullptr && y != nullptr && w.data != nullptr), "matmul: null buffer");
}

// Threads worth using: one per ~4 MFLOP of work, so tiny products (attention heads of
// short sequences, tests) do not pay the fork/join, and never more than OpenMP offers.
int choose_threads(int64_t n, int64_t k, int64_t out) {
  if (omp_in_parallel()) return 1;
  const double flops = 2.0 * double(n) * double(k) * double(out);
  const int useful = int(std::min<double>(flops / 4e6 + 1, 1 << 20));
  return std::max(1, std::min(omp_get_max_threads(), useful));
}

}  // namespace

bool isa_available(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return cpu_has("avx2");
    case Isa::kAvx512: return cpu_has("avx512");
  }
  return false;
}

Isa best_isa() {
  // The CPU does not change under a running process: decide once.
  static const Isa best = isa_available(Isa::kAvx512) ? Isa::kAvx512
                          : isa_available(Isa::kAvx2) ? Isa::kAvx2
                                                      : Isa::kScalar;
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

namespace {

// The dispatcher behind matmul_with_isa / matmul_round_bf16_with_isa. With round_bf16,
// y ends rounded to bf16: by the AVX-512 F32 / BF16 kernel as it stores its tiles, by a
// pass over y after every other path.
void run_matmul(Isa isa, const float* x, int64_t n, const TensorView& w, const float* bias, float* y,
                bool round_bf16) {
  check_args(x, n, w, y);
  bool rounded = !round_bf16;
  if (w.dtype == DType::F16 || dtype_is_quantized(w.dtype)) {  // GGUF weights: ops/cpu/qmatmul.cpp
    if (n > 0 && w.dim(0) > 0) qmatmul(isa, x, n, w, bias, y);
  } else if (n > 0 && w.dim(0) > 0) {
    matmul_detail::Problem p = matmul_detail::problem_for(x, n, w, bias, y);
    p.threads = choose_threads(n, p.k, p.out);
    if (p.k == 0) {  // empty sum: y is the bias (or zero)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < p.out; ++c) y[r * p.out + c] = bias ? bias[c] : 0.0f;
    } else if (isa == Isa::kAvx512) {
      p.round_bf16 = round_bf16;
      rounded = true;
      matmul_detail::matmul_avx512(p);
    } else if (isa == Isa::kAvx2) {
      matmul_detail::matmul_avx2(p);
    } else {
      matmul_detail::matmul_scalar(p);
    }
  }
  if (!rounded) round_to_bf16(y, n * w.dim(0));
}

void run_matmul_multi(Isa isa, const float* x, int64_t n, std::span<const MatmulTarget> targets, bool round_bf16) {
  if (targets.empty()) return;
  for (const MatmulTarget& t : targets) check_args(x, n, t.w, t.y);
  const DType dtype = targets[0].w.dtype;
  const int64_t k = targets[0].w.dim(1);
  int64_t total_out = 0;
  bool shared = n > 0 && k > 0;
  for (const MatmulTarget& t : targets) {
    shared = shared && t.w.dtype == dtype && t.w.dim(1) == k;
    total_out += t.w.dim(0);
  }
  if (shared && int8_path(isa, dtype)) {  // x quantized once for every target
    qmatmul_detail::Q8Rows xq;
    qmatmul_detail::quantize_rows_q8(x, n, k, &xq);
    for (const MatmulTarget& t : targets) {
      if (t.w.dim(0) > 0) qmatmul_int8(isa, xq, t.w, t.bias, t.y);
      if (round_bf16) round_to_bf16(t.y, n * t.w.dim(0));
    }
  } else if (shared && isa == Isa::kAvx512 && total_out > 0) {
    const int threads = choose_threads(n, k, total_out);
    std::vector<matmul_detail::Problem> parts;
    for (const MatmulTarget& t : targets) {
      if (t.w.dim(0) == 0) continue;
      parts.push_back(matmul_detail::problem_for(x, n, t.w, t.bias, t.y));
      parts.back().threads = threads;
      parts.back().round_bf16 = round_bf16;
    }
    matmul_detail::matmul_avx512(parts);
  } else {
    for (const MatmulTarget& t : targets) run_matmul(isa, x, n, t.w, t.bias, t.y, round_bf16);
  }
}

}  // namespace

void matmul_multi_with_isa(Isa isa, const float* x, int64_t n, std::span<const MatmulTarget> targets,
                           bool round_bf16) {
  run_matmul_multi(isa, x, n, targets, round_bf16);
}

void matmul_multi(const float* x, int64_t n, std::span<const MatmulTarget> targets, bool round_bf16) {
  run_matmul_multi(best_isa(), x, n, targets, round_bf16);
}

void matmul_with_isa(Isa isa, const float* x, int64_t n, const TensorView& w, const float* bias, float* y) {
  run_matmul(isa, x, n, w, bias, y, false);
}

void matmul(const float* x, int64_t n, const TensorView& w, const float* bias, float* y) {
  matmul_with_isa(best_isa(), x, n, w, bias, y);
}

void matmul_round_bf16_with_isa(Isa isa, const float* x, int64_t n, const TensorView& w, const float* bias, float* y) {
  run_matmul(isa, x, n, w, bias, y, true);
}

void matmul_round_bf16(const float* x, int64_t n, const TensorView& w, const float* bias, float* y) {
  matmul_round_bf16_with_isa(best_isa(), x, n, w, bias, y);
}

void matmul_reference(const float* x, int64_t n, const TensorView& w, const float* bias, float* y) {
  check_args(x, n, w, y);
  const int64_t out = w.dim(0), k = w.dim(1);
  const bool bf16 = w.dtype == DType::BF16;
  std::vector<float> wrow(static_cast<size_t>(k));
  for (int64_t c = 0; c < out; ++c) {
    quant::dequantize_row(w.dtype, w.row_bytes(c), wrow.data(), k);  // exact for every dtype
    for (int64_t r = 0; r < n; ++r) {
      double acc = 0;
      for (int64_t i = 0; i < k; ++i) {
        const float xv = bf16 ? unmask::round_to_bf16(x[r * k + i]) : x[r * k + i];
        acc += double(xv) * double(wrow[size_t(i)]);
      }
      if (bias) acc += double(bias[c]);
      y[r * out + c] = float(acc);
    }
  }
}

namespace matmul_detail {

Problem problem_for(const float* x, int64_t n, const TensorView& w, const float* bias, float* y) {
  Problem p;
  p.x = x;
  p.w = w.data;
  p.dtype = w.dtype;
  p.bias = bias;
  p.y = y;
  p.n = n;
  p.out = w.dim(0);
  p.k = w.dim(1);
  return p;
}

// Portable fallback: f32 accumulation in plain loops, rows of y split over threads.
void matmul_scalar(const Problem& p) {
  const bool bf16 = p.dtype == DType::BF16;
  std::vector<float> xr;
  const float* x = p.x;
  if (bf16) {  // x rounded once per call, as the SIMD paths do
    xr.resize(size_t(p.n * p.k));
    for (int64_t i = 0; i < p.n * p.k; ++i) xr[size_t(i)] = unmask::round_to_bf16(p.x[i]);
    x = xr.data();
  }
  const auto* wb = static_cast<const uint8_t*>(p.w);
#pragma omp parallel for num_threads(p.threads) schedule(static)
  for (int64_t c = 0; c < p.out; ++c) {
    for (int64_t r = 0; r < p.n; ++r) {
      float acc = 0;
      const float* xrow = x + r * p.k;
      if (bf16) {
        for (int64_t i = 0; i < p.k; ++i) {
          uint16_t h;  // memcpy: the weight buffer may be only 2-byte aligned
          std::memcpy(&h, wb + size_t(c * p.k + i) * 2, 2);
          acc += xrow[i] * bf16_to_f32(h);
        }
      } else {
        for (int64_t i = 0; i < p.k; ++i) {
          float wv;  // memcpy: see above, the buffer need not be 4-byte aligned
          std::memcpy(&wv, wb + size_t(c * p.k + i) * 4, 4);
          acc += xrow[i] * wv;
        }
      }
      p.y[r * p.out + c] = acc + (p.bias ? p.bias[c] : 0.0f);
    }
  }
}

}  // namespace matmul_detail

}  // namespace unmask::ops
