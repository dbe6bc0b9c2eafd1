// ops/cpu/matmul_grad.cpp — backward products of the weight matmul via transposed
// copies and the forward kernel; scalar references.
#include "ops/cpu/matmul_grad.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ops/cpu/gemm.h"
#include "ops/cpu/matmul.h"
#include "unmask/error.h"

namespace unmask::ops {

namespace {

// dst[c, r] = convert(src[r, c]) for a [rows, cols] matrix (the scalar path). Blocked so both
// sides stay in cache lines; rows of dst split over threads.
template <class In, class Out, class Convert>
void transpose(const In* src, int64_t rows, int64_t cols, Out* dst, Convert convert) {
  constexpr int64_t kBlock = 32;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t c0 = 0; c0 < cols; c0 += kBlock)
    for (int64_t r0 = 0; r0 < rows; r0 += kBlock)
      for (int64_t c = c0; c < std::min(cols, c0 + kBlock); ++c)
        for (int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r) dst[c * rows + r] = convert(src[r * cols + c]);
}

// Runs y = x · W^T into `out`, or into a scratch buffer added to `out`.
void matmul_into(const float* x, int64_t n, const TensorView& w, float* out, bool accumulate) {
  if (!accumulate) {
    matmul(x, n, w, nullptr, out);
    return;
  }
  std::vector<float> tmp(size_t(n) * size_t(w.dim(0)));
  matmul(x, n, w, nullptr, tmp.data());
  const int64_t total = int64_t(tmp.size());
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t i = 0; i < total; ++i) out[i] += tmp[size_t(i)];
}

void check_compute(DType d, const char* what) {
  check(d == DType::F32 || d == DType::BF16, std::string(what) + ": dtype must be F32 or BF16, got " +
                                                 std::string(dtype_name(d)));
}

float operand(float v, DType d) { return d == DType::BF16 ? round_to_bf16(v) : v; }

}  // namespace

void transpose_f32(Isa isa, const float* src, int64_t rows, int64_t cols, float* dst) {
  if (isa == Isa::kAvx512) return matmul_grad_detail::transpose_f32_avx512(src, rows, cols, dst);
  transpose(src, rows, cols, dst, [](float v) { return v; });
}

void transpose_f32_to_bf16(Isa isa, const float* src, int64_t rows, int64_t cols, uint16_t* dst) {
  if (isa == Isa::kAvx512) return matmul_grad_detail::transpose_f32_to_bf16_avx512(src, rows, cols, dst);
  transpose(src, rows, cols, dst, [](float v) { return f32_to_bf16(v); });
}

void transpose_u16(Isa isa, const uint16_t* src, int64_t rows, int64_t cols, uint16_t* dst) {
  if (isa == Isa::kAvx512) return matmul_grad_detail::transpose_u16_avx512(src, rows, cols, dst);
  transpose(src, rows, cols, dst, [](uint16_t v) { return v; });
}

TensorView matrix_view(const void* data, DType dtype, int64_t rows, int64_t cols) {
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.ndim = 2;
  v.shape = {rows, cols, 0, 0};
  return v;
}

void linear_forward(const float* x, int64_t n, const TensorView& w, float* y) {
  check(w.ndim == 2, "linear_forward: weight must be 2-D, got " + shape_string(w));
  check_compute(w.dtype, "linear_forward");
  const int64_t out = w.dim(0), k = w.dim(1);
  if (w.dtype != DType::F32 || n == 0 || out == 0) return matmul(x, n, w, nullptr, y);
  std::vector<float> wt(size_t(out) * size_t(k));  // [k, out]
  transpose_f32(best_isa(), w.f32(), out, k, wt.data());
  gemm_f32(best_isa(), GemmArgs{n, out, k, x, k, 1, wt.data(), out, y, out, false});
}

void matmul_dx(const float* dy, int64_t n, const TensorView& w, float* dx, bool accumulate) {
  check(w.ndim == 2, "matmul_dx: weight must be 2-D, got " + shape_string(w));
  check_compute(w.dtype, "matmul_dx");
  const int64_t out = w.dim(0), k = w.dim(1);
  if (n == 0 || k == 0) return;
  if (w.dtype == DType::F32) {
    // dx [n, k] = dy [n, out] · W [out, k]: W's rows are B's rows, no transposed copy.
    gemm_f32(best_isa(), GemmArgs{n, k, out, dy, out, 1, w.f32(), k, dx, k, accumulate});
  } else {
    // A bf16 weight transposed as raw 16-bit values.
    std::vector<uint16_t> wt(size_t(out) * size_t(k));
    transpose_u16(best_isa(), w.u16(), out, k, wt.data());
    matmul_into(dy, n, matrix_view(wt.data(), DType::BF16, k, out), dx, accumulate);
  }
}

void matmul_dw(const float* dy, const float* x, int64_t n, int64_t out, int64_t k, DType compute, float* dw,
               bool accumulate) {
  check_compute(compute, "matmul_dw");
  check(n >= 0 && out >= 0 && k >= 0, "matmul_dw: negative size");
  if (out == 0 || k == 0) return;
  if (n == 0) {
    if (!accumulate) std::memset(dw, 0, size_t(out) * size_t(k) * sizeof(float));
    return;
  }
  if (compute == DType::F32) {
    // dw [out, k] = dy^T [out, n] · x [n, k]: A read transposed in place (A(o, i) =
    // dy[i * out + o]), x's rows are B's rows.
    gemm_f32(best_isa(), GemmArgs{out, k, n, dy, 1, out, x, k, dw, k, accumulate});
    return;
  }
  // BF16 compute: the bf16 dot-product kernel on transposed copies (dy^T in f32, x^T in bf16).
  std::vector<float> dyt(size_t(out) * size_t(n));  // [out, n]
  transpose_f32(best_isa(), dy, n, out, dyt.data());
  std::vector<uint16_t> xt(size_t(k) * size_t(n));
  transpose_f32_to_bf16(best_isa(), x, n, k, xt.data());
  matmul_into(dyt.data(), out, matrix_view(xt.data(), DType::BF16, k, n), dw, accumulate);
}

void matmul_dx_reference(const float* dy, int64_t n, const TensorView& w, float* dx, bool accumulate) {
  check(w.ndim == 2, "matmul_dx_reference: weight must be 2-D, got " + shape_string(w));
  check_compute(w.dtype, "matmul_dx_reference");
  const int64_t out = w.dim(0), k = w.dim(1);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < k; ++c) {
      double s = 0;
      for (int64_t o = 0; o < out; ++o)
        s += double(operand(dy[i * out + o], w.dtype)) * double(load_as_f32(w, o * k + c));
      dx[i * k + c] = accumulate ? dx[i * k + c] + float(s) : float(s);
    }
}

void matmul_dw_reference(const float* dy, const float* x, int64_t n, int64_t out, int64_t k, DType compute,
                         float* dw, bool accumulate) {
  check_compute(compute, "matmul_dw_reference");
  for (int64_t o = 0; o < out; ++o)
    for (int64_t c = 0; c < k; ++c) {
      double s = 0;
      for (int64_t i = 0; i < n; ++i)
        s += double(operand(dy[i * out + o], compute)) * double(operand(x[i * k + c], compute));
      dw[o * k + c] = accumulate ? dw[o * k + c] + float(s) : float(s);
    }
}

}  // namespace unmask::ops
