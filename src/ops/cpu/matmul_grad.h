// ops/cpu/matmul_grad.h — the two transposed products the backward pass of
//   y[n, out] = x[n, k] · W[out, k]^T
// needs:
//   dx[n, k]   (+)= dy[n, out] · W[out, k]        (gradient of the input)
//   dw[out, k] (+)= dy[n, out]^T · x[n, k]        (gradient of the weight)
//
// F32: the packed outer-product GEMM (ops/cpu/gemm.h), which reads A through strides, so
// dx = dy · W and dw = dy^T · x need no transposed copies. BF16 weight (dx) or compute =
// BF16 (dw): the forward kernel's bf16 path (ops::matmul) on transposed copies, operands
// rounded to bf16 and products accumulated in f32; the transposes cost O(n·k + n·out +
// out·k) memory traffic against the product's O(n·k·out) FLOPs.
// Buffers are the caller's; scratch (the transposed copies) is allocated per call.
#pragma once
#include <cstdint>

#include "unmask/tensor.h"

#include "ops/cpu/matmul.h"

namespace unmask::ops {

// dx[n, k] = dy[n, out] · w[out, k]; added to dx when `accumulate`. w: F32 or BF16.
void matmul_dx(const float* dy, int64_t n, const TensorView& w, float* dx, bool accumulate);
// dw[out, k] = dy[n, out]^T · x[n, k]; added to dw when `accumulate`. compute: F32 or BF16.
void matmul_dw(const float* dy, const float* x, int64_t n, int64_t out, int64_t k, DType compute, float* dw,
               bool accumulate);

// y[n, out] = x[n, k] · w[out, k]^T, the training forward's products. F32 w: the packed
// GEMM on a transposed copy of w (one pass over the weights, small next to the n rows of a
// training batch); BF16 w: ops::matmul's bf16 kernel.
void linear_forward(const float* x, int64_t n, const TensorView& w, float* y);

// A 2-D [rows, cols] view of a dense row-major buffer (borrowed), for passing
// activations and scratch panels to the matmuls as their weight operand.
TensorView matrix_view(const void* data, DType dtype, int64_t rows, int64_t cols);

// Ground truth for both: plain loops, products (of bf16-rounded operands when BF16)
// summed in double, then rounded to f32 (and added when accumulate). Single-threaded.
void matmul_dx_reference(const float* dy, int64_t n, const TensorView& w, float* dx, bool accumulate);
void matmul_dw_reference(const float* dy, const float* x, int64_t n, int64_t out, int64_t k, DType compute,
                         float* dw, bool accumulate);

// dst[c, r] = src[r, c] for a dense f32 [rows, cols] matrix (dst [cols, rows]); the
// transposed copies above go through it. Scalar blocked loops, or 16 x 16 register tiles
// on AVX-512 (bitwise the same: data movement only).
void transpose_f32(Isa isa, const float* src, int64_t rows, int64_t cols, float* dst);
// The same into bf16 (each value rounded as unmask::f32_to_bf16), and for raw 16-bit values.
void transpose_f32_to_bf16(Isa isa, const float* src, int64_t rows, int64_t cols, uint16_t* dst);
void transpose_u16(Isa isa, const uint16_t* src, int64_t rows, int64_t cols, uint16_t* dst);

namespace matmul_grad_detail {
void transpose_f32_avx512(const float* src, int64_t rows, int64_t cols, float* dst);
void transpose_f32_to_bf16_avx512(const float* src, int64_t rows, int64_t cols, uint16_t* dst);
void transpose_u16_avx512(const uint16_t* src, int64_t rows, int64_t cols, uint16_t* dst);
}  // namespace matmul_grad_detail

}  // namespace unmask::ops
