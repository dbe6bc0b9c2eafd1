// ops/cpu/vec_math.cpp — the scalar exp_f32 / SwiGLU reference and the ISA dispatch.
#include "ops/cpu/vec_math.h"

#include <algorithm>
#include <cmath>

#include "unmask/tensor.h"

namespace unmask::ops {

namespace {
// ln2 split so n·kLn2Hi is exact to double rounding and kLn2Lo carries the rest.
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2Hi = 0x1.62e42fefa39efp-1;
constexpr double kLn2Lo = 0x1.abc9e3b39803fp-56;
}  // namespace

float exp_f32(float xf) {
  // Clamp (NaN passes through fmin/fmax as the other operand would drop it, so test it).
  if (std::isnan(xf)) return xf;
  // Outside [-110, 100] the f32 result is 0 or inf already; the clamp keeps 2^n finite.
  const double x = std::min(100.0, std::max(-110.0, double(xf)));
  const double n = std::nearbyint(x * kLog2e);
  const double r = std::fma(-n, kLn2Lo, std::fma(-n, kLn2Hi, x));
  // Horner: sum_{k<=11} r^k / k!.
  double p = 1.0 / 39916800.0;
  for (double c : {1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0,
                   1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0})
    p = std::fma(p, r, c);
  return float(std::ldexp(p, int(n)));
}

void exp_shifted(Isa isa, const float* x, float shift, float* y, int64_t n) {
  if (isa == Isa::kAvx512) return vec_math_detail::exp_shifted_avx512(x, shift, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = exp_f32(x[i] - shift);
}

float max_value(Isa isa, const float* x, int64_t n) {
  if (isa == Isa::kAvx512) return vec_math_detail::max_value_avx512(x, n);
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

namespace {
// The fixed combination order of the 16 partial sums (see exp_shifted_sum in the header).
double combine_partials(const double (&part)[16]) {
  double total = 0;
  for (int j = 0; j < 8; ++j) total += part[j] + part[j + 8];
  return total;
}
}  // namespace

double exp_shifted_sum(Isa isa, const float* x, float shift, float* y, int64_t n) {
  if (isa == Isa::kAvx512) return vec_math_detail::exp_shifted_sum_avx512(x, shift, y, n);
  double part[16] = {};
  for (int64_t i = 0; i < n; ++i) {
    y[i] = exp_f32(x[i] - shift);
    part[i % 16] += double(y[i]);
  }
  return combine_partials(part);
}

double sum_squares(Isa isa, const float* x, int64_t n) {
  if (isa == Isa::kAvx512) return vec_math_detail::sum_squares_avx512(x, n);
  double part[16] = {};
  for (int64_t i = 0; i < n; ++i) part[i % 16] += double(x[i]) * double(x[i]);
  return combine_partials(part);
}

ExpMoments exp_moments(Isa isa, const float* x, int64_t n, double m) {
  if (isa == Isa::kAvx512) return vec_math_detail::exp_moments_avx512(x, n, m);
  ExpMoments s;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(x[i]) - m;
    if (!(d >= -700.0)) continue;
    const double e = std::exp(d);
    s.sum += e;
    s.centered += e * d;
  }
  return s;
}

void weighted_row_sums(Isa isa, const WeightedRows& a) {
  if (isa == Isa::kAvx512) return vec_math_detail::weighted_row_sums_avx512(a);
  for (int64_t r = 0; r < a.nr; ++r) {
    float* o = a.out + r * a.ldo;
    std::fill(o, o + a.d, 0.0f);
    for (int64_t j = 0; j < a.nk; ++j) {
      const float w = a.p[r * a.ldp + j];
      const float* v = a.rows[j];
      for (int64_t i = 0; i < a.d; ++i) o[i] = std::fma(w, v[i], o[i]);
    }
  }
}

void sigmoid_rows(Isa isa, const float* x, float* y, int64_t n) {
  if (isa == Isa::kAvx512) return vec_math_detail::sigmoid_avx512(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + exp_f32(-x[i]));
}

void silu_mul_rows(Isa isa, float* gate, const float* up, int64_t n, bool bf16) {
  if (isa == Isa::kAvx512) return vec_math_detail::silu_mul_avx512(gate, up, n, bf16);
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    float s = g / (1.0f + exp_f32(-g));
    if (bf16) s = unmask::round_to_bf16(s);
    const float r = s * up[i];
    gate[i] = bf16 ? unmask::round_to_bf16(r) : r;
  }
}

}  // namespace unmask::ops
