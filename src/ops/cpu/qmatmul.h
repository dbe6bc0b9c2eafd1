// ops/cpu/qmatmul.h — the weight matmul for F16 and block-quantized weights (GGUF).
//
//   y[n, out] = x[n, k] · W[out, k]^T (+ bias[out]),  W F16 / Q8_0 / Q4_0 / Q4_K / Q6_K
//
// W is borrowed (typically a GGUF mapping); x, y, bias as in matmul.h. The weights are
// never dequantized as a whole.
// - Q8_0 / Q4_0 / Q4_K / Q6_K on AVX-512 with VNNI (qmatmul_avx512.cpp) or AVX2
//   (qmatmul_avx2.cpp, VPMADDUBSW + VPMADDWD): the int8 kernels.
//   x is quantized per 32-value block to int8 (d = amax/127, kept in f32), each weight
//   block is read as quant::Int8Block (exact int8 values and f32 scales), block dot
//   products are exact int32, so y differs from the f32 product by the activation
//   rounding only (<= d/2 per x value). Q4_K's min term uses the exact f32 sum of x.
// - F16 on AVX-512 (and the block types on AVX-512 without VNNI): the f32 kernel decodes whole rows
//   of one column block at a time (at most 256 KiB of f32) into a per-thread buffer
//   (decode_row_avx512: VCVTPH2PS for F16, 16-lane unpacking for block types) and runs
//   every row block of x over it, so its result is bit-for-bit the f32 kernel's on the
//   decoded weights.
// - F16 on AVX2, and everything on the scalar path: ~1 MiB panels of W rows dequantized per
//   thread, then the f32 kernel of that ISA.
#pragma once
#include <cstdint>
#include <vector>

#include "ops/cpu/matmul.h"
#include "unmask/tensor.h"

namespace unmask::ops {

// Precondition: w is 2-D, its dtype F16 or a block type, w.dim(1) whole blocks;
// isa_available(isa). Called by matmul_with_isa for those dtypes.
void qmatmul(Isa isa, const float* x, int64_t n, const TensorView& w, const float* bias, float* y);
bool vnni_available();  // the running CPU has AVX-512 VNNI (and the kAvx512 set)
// Whether qmatmul runs the int8 kernel for weights of type t with this isa.
bool int8_path(Isa isa, DType t);

namespace qmatmul_detail {
struct Q8Rows;
}
// The int8 kernel of isa (int8_path(isa, w.dtype)) on x already quantized by
// qmatmul_detail::quantize_rows_q8 (xq.k == w.dim(1)): what qmatmul does after quantizing.
void qmatmul_int8(Isa isa, const qmatmul_detail::Q8Rows& xq, const TensorView& w, const float* bias, float* y);

namespace qmatmul_detail {
// x [n, k] quantized per 32-value block for the int8 kernels. Owns its buffers.
//   q[r*k + i] = round(x / d) in [-127, 127],  scale[r*(k/32) + b] = d,
//   qsum16[r*(k/16) + s] = sum of q over values 16s .. 16s+15 (the kernels' offset terms),
//   sum[r*(k/32) + b] = the block's f32 values summed in order (Q4_K's min term)
struct Q8Rows {
  int64_t n = 0, k = 0;
  std::vector<int8_t> q;
  std::vector<float> scale, sum;
  std::vector<int32_t> qsum16;
};
void quantize_rows_q8(const float* x, int64_t n, int64_t k, Q8Rows* out);
// Scalar reference of the int8 product for W of type t (Q8_0 / Q4_0 / Q4_K / Q6_K):
// integer sums per scale (16 or 32 values), scales, min terms and sums in double.
void int8_matmul_reference(const Q8Rows& x, DType t, const uint8_t* w, int64_t out, const float* bias, float* y);
void int8_matmul_avx512(const Q8Rows& x, DType t, const uint8_t* w, int64_t out, const float* bias, float* y,
                        int threads);
// The same product on AVX2 (VPMADDUBSW + VPMADDWD), for CPUs without AVX-512 VNNI.
void int8_matmul_avx2(const Q8Rows& x, DType t, const uint8_t* w, int64_t out, const float* bias, float* y,
                      int threads);
// The f32 AVX-512 kernel on weights decoded per column block (the F16 path, and the block
// types' on CPUs without VNNI); qmatmul's preconditions.
void decoded_matmul_avx512(const float* x, int64_t n, const TensorView& w, const float* bias, float* y);
// n values of an F16 / Q8_0 / Q4_0 / Q4_K / Q6_K row (n whole blocks) to f32 with AVX-512,
// bit-for-bit quant::dequantize_row (decode_avx512.cpp); other dtypes go to it.
void decode_row_avx512(DType t, const void* src, float* dst, int64_t n);
}  // namespace qmatmul_detail

}  // namespace unmask::ops
