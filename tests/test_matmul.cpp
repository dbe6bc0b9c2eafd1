// Matmul kernels (every ISA the CPU has) against the scalar reference.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ops/cpu/matmul.h"

namespace unmask::ops {
namespace {

struct Case {
  std::vector<float> x, bias;
  std::vector<uint8_t> wbytes;  // weight bytes, starting at `offset`
  size_t offset = 0;
  int64_t n = 0, k = 0, out = 0;
  DType dtype = DType::F32;

  TensorView view() const {
    TensorView v;
    v.data = wbytes.data() + offset;
    v.dtype = dtype;
    v.ndim = 2;
    v.shape = {out, k, 0, 0};
    return v;
  }
};

// Random non-zero data: values uniform in +-[0.1, 1] so no product vanishes. `offset`
// shifts the weights inside their buffer (2 = the only alignment safetensors promises
// for bf16).
Case make_case(int64_t n, int64_t k, int64_t out, DType dtype, size_t offset, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(0.1f, 1.0f);
  auto value = [&] { return (rng() & 1 ? 1.0f : -1.0f) * mag(rng); };
  Case c;
  c.n = n;
  c.k = k;
  c.out = out;
  c.dtype = dtype;
  c.offset = offset;
  c.x.resize(size_t(n * k));
  for (auto& v : c.x) v = value();
  c.bias.resize(size_t(out));
  for (auto& v : c.bias) v = value();
  const size_t es = dtype_size(dtype);
  c.wbytes.resize(offset + size_t(out * k) * es);
  for (int64_t i = 0; i < out * k; ++i) {
    const float v = value();
    if (dtype == DType::BF16) {
      const uint16_t h = f32_to_bf16(v);
      std::memcpy(c.wbytes.data() + offset + size_t(i) * 2, &h, 2);
    } else {
      std::memcpy(c.wbytes.data() + offset + size_t(i) * 4, &v, 4);
    }
  }
  return c;
}

// The reference sums exact products (bf16-rounded x for BF16 weights) in double, so its
// own error is ~k * 2^-53 relative, negligible. A kernel works in f32 and rounds at most
// twice per term (product, then add; an FMA or VDPBF16PS rounds less), in any order,
// plus once for the bias: the standard first-order bound for such a sum is
// 2 * (k + 1) * 2^-24 * (sum |x_i * w_i| + |bias|). Summation order is the only
// allowed difference, so anything beyond this bound is a kernel bug.
void expect_close(const Case& c, const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  const TensorView w = c.view();
  for (int64_t r = 0; r < c.n; ++r) {
    for (int64_t o = 0; o < c.out; ++o) {
      double mag = std::fabs(double(c.bias[size_t(o)]));
      for (int64_t i = 0; i < c.k; ++i) {
        const float xv = c.dtype == DType::BF16 ? round_to_bf16(c.x[size_t(r * c.k + i)]) : c.x[size_t(r * c.k + i)];
        mag += std::fabs(double(xv) * double(load_as_f32(w, o * c.k + i)));
      }
      const double tol = 2.0 * double(c.k + 1) * std::ldexp(1.0, -24) * mag;
      const size_t idx = size_t(r * c.out + o);
      ASSERT_NEAR(got[idx], want[idx], tol) << what << " n=" << c.n << " k=" << c.k << " out=" << c.out
                                           << " row=" << r << " col=" << o;
    }
  }
}

std::vector<Isa> available_isas() {
  std::vector<Isa> isas;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (isa_available(i)) isas.push_back(i);
  return isas;
}

void check_all(DType dtype, size_t offset, bool with_bias) {
  uint32_t seed = 1;
  for (int64_t n : {1, 3, 17, 65})
    for (int64_t k : {1, 7, 33, 130, 257})
      for (int64_t out : {1, 5, 31, 66}) {
        const Case c = make_case(n, k, out, dtype, offset, seed++);
        const float* bias = with_bias ? c.bias.data() : nullptr;
        std::vector<float> want(size_t(n * out)), got(size_t(n * out), NAN);
        matmul_reference(c.x.data(), n, c.view(), bias, want.data());
        Case unbiased = c;
        if (!with_bias) std::fill(unbiased.bias.begin(), unbiased.bias.end(), 0.0f);
        for (Isa isa : available_isas()) {
          std::fill(got.begin(), got.end(), NAN);  // every output must be written
          matmul_with_isa(isa, c.x.data(), n, c.view(), bias, got.data());
          expect_close(unbiased, got, want, isa_name(isa));
          if (testing::Test::HasFatalFailure()) return;
        }
      }
}

TEST(Matmul, F32MatchesReference) { check_all(DType::F32, 0, false); }
TEST(Matmul, F32WithBiasMatchesReference) { check_all(DType::F32, 0, true); }
TEST(Matmul, Bf16MatchesReference) { check_all(DType::BF16, 0, false); }
TEST(Matmul, Bf16WithBiasMatchesReference) { check_all(DType::BF16, 0, true); }
TEST(Matmul, Bf16MisalignedWeights) { check_all(DType::BF16, 2, true); }
TEST(Matmul, F32MisalignedWeights) { check_all(DType::F32, 2, false); }

// Shapes past one k block and one column block of the kernels' blocking, with enough
// work for several threads: many outputs (threads split columns) and few outputs with
// many rows (threads split rows). Runs on however many threads OpenMP offers.
TEST(Matmul, LargeShapesMatchReference) {
  struct Shape {
    int64_t n, k, out;
  };
  for (const Shape s : {Shape{13, 1500, 300}, Shape{301, 1100, 21}})
    for (DType dtype : {DType::F32, DType::BF16}) {
      const Case c = make_case(s.n, s.k, s.out, dtype, 2, 99);
      std::vector<float> want(size_t(c.n * c.out)), got(want.size());
      matmul_reference(c.x.data(), c.n, c.view(), c.bias.data(), want.data());
      for (Isa isa : available_isas()) {
        matmul_with_isa(isa, c.x.data(), c.n, c.view(), c.bias.data(), got.data());
        expect_close(c, got, want, isa_name(isa));
      }
    }
}

// The bf16 path rounds x to bf16 first (as torch's bf16 Linear sees its input): an x
// value that is not a bf16 number must give the same result as its rounded value.
TEST(Matmul, Bf16RoundsActivationsToNearestEven) {
  const Case c = make_case(2, 9, 3, DType::BF16, 0, 7);
  std::vector<float> x = c.x, xr = c.x;
  x[0] = 1.00390625f;  // halfway between bf16 1.0 and 1.0078125: ties to even, 1.0
  xr[0] = 1.0f;
  for (Isa isa : available_isas()) {
    std::vector<float> a(6), b(6);
    matmul_with_isa(isa, x.data(), 2, c.view(), nullptr, a.data());
    matmul_with_isa(isa, xr.data(), 2, c.view(), nullptr, b.data());
    EXPECT_EQ(a, b) << isa_name(isa);
  }
}

// The rounding epilogue: bitwise the plain product followed by ops::round_to_bf16, on
// every ISA, with a bias, several threads' worth of columns and a NaN row (kept quiet).
TEST(Matmul, RoundBf16EpilogueEqualsRoundingAfterwards) {
  uint32_t seed = 7;
  for (DType dtype : {DType::F32, DType::BF16})
    for (auto [n, k, out] : {std::array<int64_t, 3>{1, 7, 5}, {17, 257, 66}, {65, 130, 301}}) {
      Case c = make_case(n, k, out, dtype, 0, seed++);
      c.x[size_t(k)] = NAN;  // row 1 (when there is one) turns to NaN
      for (Isa isa : available_isas()) {
        std::vector<float> want(size_t(n * out)), got(size_t(n * out), 1.0f);
        matmul_with_isa(isa, c.x.data(), n, c.view(), c.bias.data(), want.data());
        for (float& v : want) v = round_to_bf16(v);
        matmul_round_bf16_with_isa(isa, c.x.data(), n, c.view(), c.bias.data(), got.data());
        for (size_t i = 0; i < want.size(); ++i) {
          if (std::isnan(want[i])) {
            ASSERT_TRUE(std::isnan(got[i])) << isa_name(isa) << " at " << i;
            continue;
          }
          uint32_t a, b;
          std::memcpy(&a, &want[i], 4);
          std::memcpy(&b, &got[i], 4);
          ASSERT_EQ(a, b) << isa_name(isa) << " " << dtype_name(dtype) << " n=" << n << " at " << i;
        }
      }
    }
}

TEST(Matmul, BestIsaIsAvailable) { EXPECT_TRUE(isa_available(best_isa())); }

}  // namespace
}  // namespace unmask::ops
