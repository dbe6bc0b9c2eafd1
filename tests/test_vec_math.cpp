// exp_f32 and SwiGLU: the AVX-512 lanes against the scalar reference (bitwise), and the
// reference against libm.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "ops/cpu/vec_math.h"
#include "unmask/tensor.h"

namespace unmask::ops {
namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Ulps between two finite floats of the same sign.
int64_t ulp_distance(float a, float b) { return std::llabs(int64_t(bits(a)) - int64_t(bits(b))); }

// Random activations: wide normal values plus the edges (huge, tiny, +-0, +-inf, NaN,
// denormal results, values near the overflow / underflow thresholds).
std::vector<float> activations(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 6.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  const float edges[] = {0.0f, -0.0f, 88.72f, 88.73f, -87.33f, -103.9f, -104.0f, 200.0f, -200.0f,
                         std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                         std::numeric_limits<float>::quiet_NaN(), 1e-30f, -1e-30f};
  for (size_t i = 0; i < std::size(edges) && i * 7 < x.size(); ++i) x[i * 7] = edges[i];
  return x;
}

void expect_same_bits(const std::vector<float>& want, const std::vector<float>& got, const char* what) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " at " << i;
      continue;
    }
    ASSERT_EQ(bits(want[i]), bits(got[i])) << what << " at " << i << ": " << want[i] << " vs " << got[i];
  }
}

TEST(VecMath, ExpIsWithinOneUlpOfLibmAndUsuallyEqual) {
  // Every 4099th f32 bit pattern whose exp is a normal, finite f32 (and a few beyond).
  int64_t total = 0, differ = 0;
  for (uint64_t u = 0; u <= 0xffffffffu; u += 4099) {
    float x;
    const uint32_t u32 = uint32_t(u);
    std::memcpy(&x, &u32, 4);
    if (!(x > -87.0f && x < 88.0f)) continue;
    ++total;
    const float want = std::exp(x), got = exp_f32(x);
    ASSERT_LE(ulp_distance(want, got), 1) << "x = " << x;
    differ += bits(want) != bits(got);
  }
  ASSERT_GT(total, 100000);
  // glibc is within 0.502 ulp, exp_f32 nearly correctly rounded: they part on ~1e-4.
  EXPECT_LT(double(differ) / double(total), 1e-3) << differ << " of " << total;
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
  EXPECT_EQ(exp_f32(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(exp_f32(-200.0f), 0.0f);
  EXPECT_TRUE(std::isinf(exp_f32(89.0f)));
  EXPECT_TRUE(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_GT(exp_f32(-100.0f), 0.0f);  // a denormal f32, not flushed
}

TEST(VecMath, Avx512ExpEqualsTheScalarReference) {
  if (!isa_available(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (int64_t n : {1, 15, 16, 17, 1001}) {
    const std::vector<float> x = activations(n, uint32_t(n));
    const float shift = 0.37f;
    std::vector<float> want(x.size()), got(x.size());
    exp_shifted(Isa::kScalar, x.data(), shift, want.data(), n);
    exp_shifted(Isa::kAvx512, x.data(), shift, got.data(), n);
    expect_same_bits(want, got, "exp_shifted");
    std::vector<float> in_place = x;  // x may equal y
    exp_shifted(Isa::kAvx512, in_place.data(), shift, in_place.data(), n);
    expect_same_bits(want, in_place, "exp_shifted in place");
  }
}

TEST(VecMath, Avx512SiluMulEqualsTheScalarReference) {
  if (!isa_available(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (bool bf16 : {false, true})
    for (int64_t n : {1, 15, 17, 769, 4099}) {
      const std::vector<float> gate = activations(n, uint32_t(2 * n + bf16)), up = activations(n, uint32_t(3 * n));
      std::vector<float> want = gate, got = gate;
      silu_mul_rows(Isa::kScalar, want.data(), up.data(), n, bf16);
      silu_mul_rows(Isa::kAvx512, got.data(), up.data(), n, bf16);
      expect_same_bits(want, got, bf16 ? "silu_mul bf16" : "silu_mul f32");
    }
}

TEST(VecMath, Avx512ExpMomentsAgreeWithTheScalarSums) {
  if (!isa_available(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 8.0f);
  for (int64_t n : {1, 7, 8, 9, 4099}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = normal(rng);
    if (n > 2) x[1] = -std::numeric_limits<float>::infinity();  // a banned token: counts 0
    if (n > 3) x[2] = -1e30f;                                   // below e^-700: counts 0
    double m = -INFINITY;
    for (float v : x) m = std::max(m, double(v));
    const ExpMoments want = exp_moments(Isa::kScalar, x.data(), n, m);
    const ExpMoments got = exp_moments(Isa::kAvx512, x.data(), n, m);
    ASSERT_TRUE(std::isfinite(got.sum) && std::isfinite(got.centered)) << n;
    // Float64 sums of positive terms in another order, with exp's ~1e-15: a few 1e-15.
    EXPECT_NEAR(got.sum, want.sum, 1e-14 * want.sum) << n;
    EXPECT_NEAR(got.centered, want.centered, 1e-13 * std::fabs(want.centered) + 1e-300) << n;
    EXPECT_GE(want.sum, 1.0);  // the maximum's own term
  }
}

// P·V over row pointers (attention): AVX-512 bitwise equal to the scalar FMA loop, and
// both within f32 accumulation error of a float64 sum.
TEST(VecMath, WeightedRowSumsMatchScalarAndDouble) {
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (int64_t nr : {1, 5, 7, 13})
    for (int64_t d : {1, 17, 64, 80, 130})
      for (int64_t nk : {1, 37}) {
        std::vector<float> p(size_t(nr * (nk + 3))), values(size_t(nk * (d + 5)));
        for (auto& v : p) v = uni(rng);
        for (auto& v : values) v = uni(rng);
        std::vector<const float*> rows(static_cast<size_t>(nk));
        for (int64_t j = 0; j < nk; ++j) rows[size_t(nk - 1 - j)] = values.data() + j * (d + 5);  // any order / stride
        const int64_t ldo = d + 2;
        std::vector<float> want(size_t(nr * ldo), 7.0f), got(size_t(nr * ldo), 7.0f);
        const WeightedRows a{p.data(), nr, nk + 3, rows.data(), nk, d, want.data(), ldo};
        weighted_row_sums(Isa::kScalar, a);
        for (int64_t r = 0; r < nr; ++r) {
          EXPECT_EQ(want[size_t(r * ldo + d)], 7.0f) << "wrote past the row";
          for (int64_t i = 0; i < d; ++i) {
            double exact = 0, mag = 0;
            for (int64_t j = 0; j < nk; ++j) {
              exact += double(p[size_t(r * (nk + 3) + j)]) * rows[size_t(j)][i];
              mag += std::fabs(double(p[size_t(r * (nk + 3) + j)]) * rows[size_t(j)][i]);
            }
            // nk fused multiply-adds, each rounding once: nk * 2^-24 * sum |terms|.
            ASSERT_NEAR(want[size_t(r * ldo + i)], exact, double(nk) * std::ldexp(1.0, -24) * mag);
          }
        }
        if (!isa_available(Isa::kAvx512)) continue;
        WeightedRows b = a;
        b.out = got.data();
        weighted_row_sums(Isa::kAvx512, b);
        expect_same_bits(want, got, "weighted_row_sums");
      }
}

TEST(VecMath, Avx512SigmoidEqualsTheScalarReference) {
  for (int64_t n : {1, 15, 17, 1025}) {
    const std::vector<float> x = activations(n, uint32_t(4 * n));
    std::vector<float> want(x.size()), got(x.size());
    sigmoid_rows(Isa::kScalar, x.data(), want.data(), n);
    for (size_t i = 0; i < x.size(); ++i) {
      if (!std::isfinite(x[i])) continue;
      EXPECT_NEAR(want[i], 1.0 / (1.0 + std::exp(-double(x[i]))), 2e-7) << x[i];  // ~2 f32 roundings
    }
    if (!isa_available(Isa::kAvx512)) continue;
    sigmoid_rows(Isa::kAvx512, x.data(), got.data(), n);
    expect_same_bits(want, got, "sigmoid");
  }
}

TEST(VecMath, SiluMulMatchesTheFormulaInDouble) {
  const int64_t n = 333;
  const std::vector<float> gate = activations(n, 5), up = activations(n, 6);
  std::vector<float> y = gate;
  silu_mul_rows(Isa::kScalar, y.data(), up.data(), n, false);
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[size_t(i)], want = g / (1.0 + std::exp(-g)) * up[size_t(i)];
    if (!std::isfinite(want)) continue;
    // Three f32 roundings (exp, divide, multiply) plus 1 + e: a few ulp of the result.
    EXPECT_NEAR(y[size_t(i)], want, 4e-7 * std::fabs(want) + 1e-30) << "g = " << g;
  }
}

// The reductions the trainer uses (cross-entropy's max and exp sum, the gradient norm):
// AVX-512 equal to the scalar loops bit for bit on odd lengths, and the sums within
// float64 rounding of a long-double sum.
TEST(VecMath, Avx512ReductionsEqualTheScalarReference) {
  if (!isa_available(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (int64_t n : {1, 15, 16, 17, 31, 4099}) {
    std::vector<float> x = activations(n, uint32_t(5 * n));
    for (float& v : x)
      if (!std::isfinite(v) || std::fabs(v) > 80.0f) v = 1.5f;  // finite sums for the exp check
    const float m = max_value(Isa::kScalar, x.data(), n);
    EXPECT_EQ(bits(m), bits(max_value(Isa::kAvx512, x.data(), n))) << n;
    long double want_max = -INFINITY;
    for (float v : x) want_max = std::max(want_max, (long double)v);
    EXPECT_EQ(double(m), double(want_max)) << n;

    std::vector<float> want(x.size()), got(x.size());
    const double s_scalar = exp_shifted_sum(Isa::kScalar, x.data(), m, want.data(), n);
    const double s_avx = exp_shifted_sum(Isa::kAvx512, x.data(), m, got.data(), n);
    expect_same_bits(want, got, "exp_shifted_sum values");
    EXPECT_EQ(s_scalar, s_avx) << n;
    long double exact = 0;
    for (float v : want) exact += v;
    // n float64 additions of positive terms: relative error below n * 2^-53.
    EXPECT_NEAR(s_scalar, double(exact), double(n) * 1.2e-16 * double(exact)) << n;
    EXPECT_GE(s_scalar, 1.0) << n;  // the maximum's own term is e^0

    const double q_scalar = sum_squares(Isa::kScalar, x.data(), n), q_avx = sum_squares(Isa::kAvx512, x.data(), n);
    EXPECT_EQ(q_scalar, q_avx) << n;
    long double q_exact = 0;
    for (float v : x) q_exact += (long double)v * v;
    EXPECT_NEAR(q_scalar, double(q_exact), double(n) * 1.2e-16 * double(q_exact)) << n;
  }
  // A NaN is skipped by the maximum on both paths; n = 0 gives -inf.
  std::vector<float> with_nan = {1.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f, -2.0f};
  EXPECT_EQ(max_value(Isa::kScalar, with_nan.data(), 4), 3.0f);
  EXPECT_EQ(max_value(Isa::kAvx512, with_nan.data(), 4), 3.0f);
  EXPECT_EQ(max_value(Isa::kAvx512, with_nan.data(), 0), -std::numeric_limits<float>::infinity());
}

}  // namespace
}  // namespace unmask::ops
