// ops/cpu/qmatmul.h — the weight matmul for F16 and block-quantized weights (GGUF).
//
//   y[n, out] = x[n, k] · W[out, k]^T (+ bias[out]),  W F16 / Q8_0 / Q4_0 / Q4_K / Q6_K
//
// W is borrowed (typically a GGUF mapping); x, y, bias as in matmul.h. Activations stay
// f32. The weights are never dequantized as a whole. On AVX-512 the f32 kernel decodes
// whole rows of one column block at a time (at most 256 KiB of f32) into a per-thread
// buffer (decode_row_avx512: VCVTPH2PS for F16, 16-lane unpacking for block types) and
// runs every row block of x over it, so its result is bit-for-bit the f32 kernel's on the
// decoded weights. Other ISAs dequantize ~1 MiB panels of W rows per thread and run their
// f32 kernel on them.
#pragma once
#include <cstdint>
#include <vector>

#include "ops/cpu/matmul.h"
#include "unmask/tensor.h"

namespace unmask::ops {

// Precondition: w is 2-D, its dtype F16 or a block type, w.dim(1) whole blocks;
// isa_available(isa). Called by matmul_with_isa for those dtypes.
// Exception to the panel path: Q8_0 weights on AVX-512 with VNNI run the int8 kernel
// (qmatmul_avx512.cpp): x is quantized per 32-value block to int8 (d = amax/127, kept in
// f32), block dot products are exact int32, so y differs from the f32 product by the
// activation rounding only (<= d/2 per x value).
void qmatmul(Isa isa, const float* x, int64_t n, const TensorView& w, const float* bias, float* y);
bool q8_0_int8_available();  // the running CPU has AVX-512 VNNI (and the kAvx512 set)

namespace qmatmul_detail {
// x [n, k] quantized per 32-value block for the int8 kernels. Owns its buffers.
//   q[r*k + i] = round(x / d) + 128 (unsigned, for VPDPBUSD),  scale[r*(k/32) + b] = d
struct Q8Rows {
  int64_t n = 0, k = 0;
  std::vector<uint8_t> q;
  std::vector<float> scale;
};
void quantize_rows_q8(const float* x, int64_t n, int64_t k, Q8Rows* out);
// Scalar reference of the int8 product: integer block sums, scales and sums in double.
void q8_0_matmul_reference(const Q8Rows& x, const uint8_t* w, int64_t out, const float* bias, float* y);
void q8_0_matmul_avx512(const Q8Rows& x, const uint8_t* w, int64_t out, const float* bias, float* y, int threads);
// n values of an F16 / Q8_0 / Q4_0 / Q4_K / Q6_K row (n whole blocks) to f32 with AVX-512,
// bit-for-bit quant::dequantize_row (decode_avx512.cpp); other dtypes go to it.
void decode_row_avx512(DType t, const void* src, float* dst, int64_t n);
}  // namespace qmatmul_detail

}  // namespace unmask::ops
