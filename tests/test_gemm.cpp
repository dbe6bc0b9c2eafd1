// The packed outer-product GEMM (ops/cpu/gemm.h): AVX-512 against the scalar FMA chain
// bit for bit, and both against a float64 sum, on odd shapes, transposed A and
// accumulation.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ops/cpu/gemm.h"

namespace unmask::ops {
namespace {

std::vector<float> uniform(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.1f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = (rng() & 1 ? 1.0f : -1.0f) * u(rng);  // never 0
  return v;
}

TEST(Gemm, Avx512EqualsScalarAndFloat64OnOddShapes) {
  uint32_t seed = 1;
  for (auto [m, n, k] : {std::array<int64_t, 3>{1, 1, 1}, {5, 63, 7}, {6, 64, 256}, {7, 65, 257}, {13, 130, 600},
                         {40, 17, 3}})
    for (bool transposed_a : {false, true})
      for (bool accumulate : {false, true}) {
        const std::vector<float> a = uniform(size_t(m * k), seed++), b = uniform(size_t(k * (n + 3)), seed++),
                                 c0 = uniform(size_t(m * (n + 1)), seed++);
        GemmArgs g;
        g.m = m;
        g.n = n;
        g.k = k;
        g.a = a.data();
        g.a_rs = transposed_a ? 1 : k;  // A stored [k, m] when transposed
        g.a_cs = transposed_a ? m : 1;
        g.b = b.data();
        g.ldb = n + 3;
        g.ldc = n + 1;
        g.accumulate = accumulate;
        std::vector<float> want = c0, got = c0;
        g.c = want.data();
        gemm_f32(Isa::kScalar, g);
        for (int64_t i = 0; i < m; ++i) {
          EXPECT_EQ(want[size_t(i * (n + 1) + n)], c0[size_t(i * (n + 1) + n)]) << "wrote past row " << i;
          for (int64_t j = 0; j < n; ++j) {
            double exact = accumulate ? c0[size_t(i * (n + 1) + j)] : 0.0, mag = std::fabs(exact);
            for (int64_t p = 0; p < k; ++p) {
              const double t = double(a[size_t(i * g.a_rs + p * g.a_cs)]) * b[size_t(p * g.ldb + j)];
              exact += t;
              mag += std::fabs(t);
            }
            // k + 1 roundings of an FMA chain: (k + 1) 2^-24 sum |terms|.
            ASSERT_NEAR(want[size_t(i * (n + 1) + j)], exact, double(k + 1) * std::ldexp(1.0, -24) * mag);
          }
        }
        if (!isa_available(Isa::kAvx512)) continue;
        g.c = got.data();
        gemm_f32(Isa::kAvx512, g);
        ASSERT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0)
            << m << "x" << n << "x" << k << " transposed " << transposed_a << " accumulate " << accumulate;
      }
}

}  // namespace
}  // namespace unmask::ops
