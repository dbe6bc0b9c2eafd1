// Matmul for F16 / block-quantized weights (contract in qmatmul.h): the int8 Q8_0 kernel,
// the AVX-512 f32 kernel on per-block decoded weights, or per-thread f32 panels.
#include "ops/cpu/qmatmul.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "unmask/quant.h"

namespace unmask::ops {

namespace {

// One thread per ~4 MFLOP as the f32 dispatcher does, never more than work units, and
// one inside an active parallel region.
int threads_for(int64_t n, int64_t k, int64_t out, int64_t units) {
  if (omp_in_parallel()) return 1;
  const double flops = 2.0 * double(n) * double(k) * double(out);
  return int(std::max<int64_t>(1, std::min<int64_t>({omp_get_max_threads(), units, int64_t(flops / 4e6) + 1})));
}

}  // namespace

namespace qmatmul_detail {

void quantize_rows_q8(const float* x, int64_t n, int64_t k, Q8Rows* out) {
  const int64_t nb = k / 32;
  out->n = n;
  out->k = k;
  out->q.resize(size_t(n * k));
  out->scale.resize(size_t(n * nb));
  out->sum.resize(size_t(n * nb));
  out->qsum16.assign(size_t(n * nb * 2), 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      const float* v = x + r * k + 32 * b;
      float amax = 0, sum = 0;
      for (int i = 0; i < 32; ++i) {
        amax = std::max(amax, std::fabs(v[i]));
        sum += v[i];
      }
      const float d = amax / 127, inv = d > 0 ? 1 / d : 0;
      out->scale[size_t(r * nb + b)] = d;
      out->sum[size_t(r * nb + b)] = sum;
      for (int i = 0; i < 32; ++i) {
        // cvtss2si rounds half to even (the default MXCSR mode) without a libm call.
        const int q = _mm_cvtss_si32(_mm_set_ss(v[i] * inv));
        out->q[size_t(r * k + 32 * b + i)] = int8_t(q);
        out->qsum16[size_t(r * nb * 2 + 2 * b + i / 16)] += q;
      }
    }
}

void int8_matmul_reference(const Q8Rows& x, DType t, const uint8_t* w, int64_t out, const float* bias, float* y) {
  const int64_t nb = x.k / 32, row_bytes = int64_t(dtype_row_bytes(t, x.k));
  quant::Int8Block blk;
  for (int64_t c = 0; c < out; ++c)
    for (int64_t r = 0; r < x.n; ++r) {
      double acc = bias ? bias[c] : 0.0;
      for (int64_t b = 0; b < nb; ++b) {
        quant::int8_block(t, w + size_t(c * row_bytes), b, &blk);
        const double dx = x.scale[size_t(r * nb + b)];
        for (int h = 0; h < 2; ++h) {
          int32_t isum = 0;
          for (int i = 16 * h; i < 16 * h + 16; ++i)
            isum += int32_t(x.q[size_t(r * x.k + 32 * b + i)]) * blk.v[i];
          acc += double(blk.scale[h]) * dx * double(isum);
        }
        acc -= double(blk.min) * double(x.sum[size_t(r * nb + b)]);
      }
      y[r * out + c] = float(acc);
    }
}

}  // namespace qmatmul_detail

bool vnni_available() {
  static const bool ok = isa_available(Isa::kAvx512) && __builtin_cpu_supports("avx512vnni");
  return ok;
}

void qmatmul_detail::decoded_matmul_avx512(const float* x, int64_t n, const TensorView& w, const float* bias,
                                           float* y) {
  const int64_t out = w.dim(0), k = w.dim(1);
  matmul_detail::Problem p = matmul_detail::problem_for(x, n, w, bias, y);
  p.threads = threads_for(n, k, out, (out + 3) / 4);  // units of whole 4-column tiles at least
  matmul_detail::matmul_avx512(p);
}

bool int8_path(Isa isa, DType t) {
  const bool int8_type = t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_K || t == DType::Q6_K;
  // AVX-512 without VNNI keeps the decoded f32 path (its FMA rate beats AVX2's int8 sums).
  return int8_type && ((isa == Isa::kAvx512 && vnni_available()) || isa == Isa::kAvx2);
}

void qmatmul_int8(Isa isa, const qmatmul_detail::Q8Rows& xq, const TensorView& w, const float* bias, float* y) {
  const int64_t out = w.dim(0);
  const auto* wb = static_cast<const uint8_t*>(w.data);
  if (isa == Isa::kAvx512)
    qmatmul_detail::int8_matmul_avx512(xq, w.dtype, wb, out, bias, y,
                                       threads_for(xq.n, xq.k, out, (out + 63) / 64));  // units of 64 W rows
  else
    qmatmul_detail::int8_matmul_avx2(xq, w.dtype, wb, out, bias, y, threads_for(xq.n, xq.k, out, (out + 31) / 32));
}

void qmatmul(Isa isa, const float* x, int64_t n, const TensorView& w, const float* bias, float* y) {
  const int64_t out = w.dim(0), k = w.dim(1);
  if (int8_path(isa, w.dtype)) {
    qmatmul_detail::Q8Rows xq;
    qmatmul_detail::quantize_rows_q8(x, n, k, &xq);
    qmatmul_int8(isa, xq, w, bias, y);
    return;
  }
  if (isa == Isa::kAvx512) return qmatmul_detail::decoded_matmul_avx512(x, n, w, bias, y);
  // Other ISAs: panels of ~1 MiB of f32 weights (fits L2 next to the x tile the f32 kernel streams),
  // at least 16 rows so the kernel's column blocking has work.
  const int64_t panel = std::clamp<int64_t>((int64_t(1) << 20) / (4 * std::max<int64_t>(k, 1)), 16, 512);
  const int64_t n_panels = (out + panel - 1) / panel;
  const int threads = threads_for(n, k, out, n_panels);
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> wpanel, ypanel;
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < n_panels; ++p) {
      const int64_t c0 = p * panel, rows = std::min(panel, out - c0);
      wpanel.resize(size_t(rows * k));
      ypanel.resize(size_t(n * rows));
      for (int64_t r = 0; r < rows; ++r) {
        quant::dequantize_row(w.dtype, w.row_bytes(c0 + r), wpanel.data() + r * k, k);
      }
      TensorView pv;
      pv.data = wpanel.data();
      pv.dtype = DType::F32;
      pv.ndim = 2;
      pv.shape = {rows, k, 0, 0};
      // Inside the parallel region the f32 kernel runs single-threaded.
      matmul_with_isa(isa, x, n, pv, bias ? bias + c0 : nullptr, ypanel.data());
      for (int64_t i = 0; i < n; ++i) std::copy_n(ypanel.data() + i * rows, rows, y + i * out + c0);
    }
  }
}

}  // namespace unmask::ops
