// ops/cpu/vec_math.h — exp and SwiGLU over f32 arrays, with a scalar reference that the
// AVX-512 path matches bit for bit (owns nothing; every pointer is the caller's).
//
// exp_f32 is the engine's one exp for activations (SwiGLU's sigmoid, attention softmax):
// x = n·ln2 + r with |r| <= ln2/2, e^r by its degree-11 Taylor polynomial in float64
// (truncation error r^12/12! < 7e-15 relative), scaled by 2^n exactly, rounded ONCE to
// f32. It is therefore correctly rounded except where e^x lies within ~1e-7 ulp of a
// rounding midpoint; glibc's expf is within 0.502 ulp and differs from it on ~8e-5 of
// inputs by one ulp (measured over every 7th f32 in [-110, 100]; test VecMath.*).
// Computing the SIMD lanes with the same float64 operations makes them identical to
// the scalar loop, so results do not depend on the instruction set.
#pragma once
#include <cstdint>

#include "ops/cpu/matmul.h"

namespace unmask::ops {

float exp_f32(float x);

// y[i] = exp_f32(x[i] - shift) for i < n; x may equal y.
void exp_shifted(Isa isa, const float* x, float shift, float* y, int64_t n);

// The largest x[i] for i < n (-inf when n = 0); NaN entries are skipped, as a loop of
// m = std::max(m, x[i]) skips them.
float max_value(Isa isa, const float* x, int64_t n);

// y[i] = exp_f32(x[i] - shift) as exp_shifted does, and returns sum_i y[i] in float64: 16
// partial sums (element i goes to partial i mod 16), then t[j] = part[j] + part[j + 8]
// and t[0] + t[1] + ... + t[7] in that order. Both paths add in exactly this order, so the
// AVX-512 sum equals the scalar one bit for bit (the trainer's cross-entropy).
double exp_shifted_sum(Isa isa, const float* x, float shift, float* y, int64_t n);

// sum_i x[i]^2 in float64 with the same 16-partial order as exp_shifted_sum (bitwise equal
// across ISAs): gradient clipping's norm.
double sum_squares(Isa isa, const float* x, int64_t n);

// y[i] = 1 / (1 + exp_f32(-x[i])) for i < n (the trainer's SwiGLU; x may equal y).
void sigmoid_rows(Isa isa, const float* x, float* y, int64_t n);

// gate[i] = silu(gate[i]) * up[i] with silu(g) = g / (1 + exp_f32(-g)); when bf16 the
// silu value and the product are each rounded to bf16 (torch's bf16 op order).
void silu_mul_rows(Isa isa, float* gate, const float* up, int64_t n, bool bf16);

// Softmax moments of a row about its maximum m, in float64: sum = sum_i e^(x_i - m) and
// centered = sum_i e^(x_i - m) (x_i - m). Terms with x_i - m < -700 (e^-700 ~ 1e-304)
// and x_i = -inf count as 0; m must be >= every x_i. The scalar path sums std::exp in
// index order; the AVX-512 path uses the float64 polynomial of exp_f32 (~1e-15 relative)
// on 8 lanes, so the two agree to a few ulps of the sums, not bitwise.
struct ExpMoments {
  double sum = 0, centered = 0;
};
ExpMoments exp_moments(Isa isa, const float* x, int64_t n, double m);

// out[r, 0:d] = sum_j p[r, j] · rows[j][0:d] for r < nr, j < nk: attention's P·V with
// the value rows read where they lie (row pointers, no transposed copy). Each output
// is accumulated in key order with one fused multiply-add per term, on every ISA, so
// the AVX-512 path equals the scalar loop bit for bit. p [nr, ldp], out [nr, ldo].
struct WeightedRows {
  const float* p = nullptr;
  int64_t nr = 0, ldp = 0;
  const float* const* rows = nullptr;  // [nk] pointers, each to d floats
  int64_t nk = 0, d = 0;
  float* out = nullptr;
  int64_t ldo = 0;
};
void weighted_row_sums(Isa isa, const WeightedRows& a);

namespace vec_math_detail {
void weighted_row_sums_avx512(const WeightedRows& a);
ExpMoments exp_moments_avx512(const float* x, int64_t n, double m);
float max_value_avx512(const float* x, int64_t n);
double exp_shifted_sum_avx512(const float* x, float shift, float* y, int64_t n);
double sum_squares_avx512(const float* x, int64_t n);
// The AVX-512 bodies (vec_math_avx512.cpp); callers go through the dispatchers above.
void exp_shifted_avx512(const float* x, float shift, float* y, int64_t n);
void silu_mul_avx512(float* gate, const float* up, int64_t n, bool bf16);
void sigmoid_avx512(const float* x, float* y, int64_t n);
}  // namespace vec_math_detail

}  // namespace unmask::ops
