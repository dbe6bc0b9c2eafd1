// ops/cpu/gemm.h — C = A·B (or C += A·B) in f32 with a packed, outer-product kernel: the
// backward pass's products (matmul_grad.cpp), whose operands come in every orientation.
// Borrows every pointer; the packed B panel (64 KiB) is a per-thread buffer reused by later calls.
//
//   A(i, p) = a[i * a_rs + p * a_cs]   — any strides, so A may be a transposed view
//   B(p, j) = b[p * ldb + j]           — rows contiguous
//   C(i, j) = c[i * ldc + j]
//
// The AVX-512 kernel keeps a 6 x 64 tile of C in 24 registers, broadcasts one A value per
// row per p and multiplies it with 64 packed B values: no horizontal reductions, unlike the
// dot-product kernel of matmul.h, so short sums (k = 256) run near the FMA peak. Each C
// element is sum_p A(i, p) B(p, j) accumulated in p order in f32 with one FMA per term, on
// both paths (the scalar loop uses std::fma), so they agree bit for bit.
#pragma once
#include <cstdint>

#include "ops/cpu/matmul.h"

namespace unmask::ops {

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  int64_t a_rs = 0, a_cs = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;
  int64_t ldc = 0;
  bool accumulate = false;  // C += A·B instead of C = A·B
};

void gemm_f32(Isa isa, const GemmArgs& g);

namespace gemm_detail {
void gemm_f32_avx512(const GemmArgs& g);
}  // namespace gemm_detail

}  // namespace unmask::ops
