// ops/cpu/matmul.h — the weight matmul, the engine's hot path.
//
//   y[n, out] = x[n, k] · W[out, k]^T  (+ bias[out])
//
// W is a 2-D TensorView [out, k], F32 or BF16 (F16 and block types: qmatmul.h),
// row-major with k contiguous, borrowed (typically from an mmapped safetensors file, so
// it may be only 2-byte aligned: the kernels use unaligned loads only). x [n, k] and
// y [n, out] are dense f32 row-major buffers owned by the caller; bias [out] is f32 or
// null. Nothing is retained after the call; the SIMD paths allocate per call a private
// copy of x (with a padded row stride, rounded to bf16 for BF16 weights) and small
// per-thread output tiles.
//
// Numerics:
//   F32 W:  f32 products accumulated in f32 (FMA).
//   BF16 W: like torch's bf16 Linear: each x value is first rounded to bf16
//           (round-to-nearest-even, unmask::f32_to_bf16); bf16 x bf16 products are exact
//           in f32 and accumulate in f32 (VDPBF16PS on AVX-512, widen + FMA on AVX2).
// The SIMD kernels and the scalar reference therefore differ only by summation order.
//
// Kernels use the file layout directly (no repack): a register-blocked "dot-product"
// micro-kernel takes R rows of x and C rows of W, both contiguous along k, keeps R*C
// vector accumulators and reduces them horizontally once per k block. See
// matmul_avx512.cpp for the blocking.
//
// Threading: OpenMP with omp_get_max_threads() threads (one thread when called from
// inside an active parallel region or when the product is too small to pay for it).
#pragma once
#include <cstdint>
#include <span>

#include "unmask/tensor.h"

namespace unmask::ops {

enum class Isa { kScalar, kAvx2, kAvx512 };

Isa best_isa();              // best kernel set the running CPU supports
bool isa_available(Isa isa);  // kScalar always; kAvx2 needs AVX2+FMA; kAvx512 needs F/BW/VL/BF16
const char* isa_name(Isa isa);  // "scalar" / "avx2" / "avx512"

// The production entry point: best_isa() kernels.
void matmul(const float* x, int64_t n, const TensorView& w, const float* bias, float* y);

// Same contract with a forced kernel set (tests, benchmarks). Precondition:
// isa_available(isa).
void matmul_with_isa(Isa isa, const float* x, int64_t n, const TensorView& w, const float* bias, float* y);

// matmul, then y rounded to bf16 (torch's bf16 Linear output): bitwise equal to matmul
// followed by ops::round_to_bf16(y), but the AVX-512 path rounds as it stores each tile,
// saving a pass over y and a fork/join per call.
void matmul_round_bf16(const float* x, int64_t n, const TensorView& w, const float* bias, float* y);
void matmul_round_bf16_with_isa(Isa isa, const float* x, int64_t n, const TensorView& w, const float* bias, float* y);

// One x times several weights: targets[i].y = x · targets[i].w^T (+ bias), each bitwise
// equal to matmul (round_bf16: matmul_round_bf16) of that target alone. Targets of one
// dtype and k share a pass: x is copied (or quantized) once, and on the AVX-512 f32 / bf16 /
// F16 / decoded paths all their output columns are work units of one parallel region, so
// there is one fork/join and one tail wait instead of one per weight (the q/k/v and the
// gate/up projections of a layer). Other combinations run target by target.
struct MatmulTarget {
  TensorView w;                 // [out_i, k], borrowed
  const float* bias = nullptr;  // [out_i] or null, borrowed
  float* y = nullptr;           // [n, out_i], caller-owned
};
void matmul_multi(const float* x, int64_t n, std::span<const MatmulTarget> targets, bool round_bf16 = false);
void matmul_multi_with_isa(Isa isa, const float* x, int64_t n, std::span<const MatmulTarget> targets,
                           bool round_bf16 = false);

// Ground truth: plain scalar loops, products of (bf16-rounded, for BF16 W) x and W
// summed in double, then rounded to f32. Single-threaded; slow by design.
void matmul_reference(const float* x, int64_t n, const TensorView& w, const float* bias, float* y);

// Internal: the per-ISA kernel entry points behind matmul_with_isa, with validated
// shapes. Each partitions the work over OpenMP threads itself because its blocking
// (and so the useful task grain) is ISA-specific.
namespace matmul_detail {
struct Problem {
  const float* x = nullptr;  // [n, k]
  const void* w = nullptr;   // [out, k], F32 or BF16, any 2-byte alignment
  DType dtype = DType::F32;  // matmul_avx512 also takes F16 (converted in the kernel) and block types (decoded per block)
  const float* bias = nullptr;  // [out] or null
  float* y = nullptr;           // [n, out]
  int64_t n = 0, k = 0, out = 0;
  int threads = 1;              // threads to use (already decided by the dispatcher)
  bool round_bf16 = false;      // round y to bf16 as it is stored (matmul_avx512 only)
};
// The Problem of y = x · w^T (+ bias) for a 2-D w (threads left at 1).
Problem problem_for(const float* x, int64_t n, const TensorView& w, const float* bias, float* y);
void matmul_avx512(const Problem& p);
// Several products of one x in one parallel region (matmul_multi): every part has the
// same x, n, k, dtype, threads and round_bf16, its own w, bias, y and out. Each part's y
// is bitwise what matmul_avx512 of that part alone gives.
void matmul_avx512(std::span<const Problem> parts);
void matmul_avx2(const Problem& p);
void matmul_scalar(const Problem& p);
}  // namespace matmul_detail

}  // namespace unmask::ops
