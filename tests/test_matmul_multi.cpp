// ops::matmul_multi: several weights of one input in one call. Each target's y must be
// bitwise what matmul (or matmul_round_bf16) of that target alone gives, on every ISA and
// weight type, including the fused AVX-512 region (one x copy, units over all targets'
// columns) and the int8 path (x quantized once).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/cpu/matmul.h"
#include "unmask/error.h"
#include "unmask/quant.h"

namespace unmask::ops {
namespace {

struct Weight {
  std::vector<uint8_t> bytes;
  std::vector<float> bias;
  TensorView view;
};

// A random [out, k] weight of type t (values +-[0.1, 1], never zero) and a bias.
Weight make_weight(DType t, int64_t out, int64_t k, std::mt19937& rng) {
  std::uniform_real_distribution<float> mag(0.1f, 1.0f);
  auto value = [&] { return (rng() & 1 ? 1.0f : -1.0f) * mag(rng); };
  Weight w;
  const size_t row_bytes = dtype_row_bytes(t, k);
  w.bytes.resize(size_t(out) * row_bytes);
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t r = 0; r < out; ++r) {
    for (float& v : row) v = value();
    quant::quantize_row(t, row.data(), w.bytes.data() + size_t(r) * row_bytes, k);
  }
  w.bias.resize(size_t(out));
  for (float& v : w.bias) v = value();
  w.view.data = w.bytes.data();
  w.view.dtype = t;
  w.view.ndim = 2;
  w.view.shape = {out, k, 0, 0};
  return w;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> isas;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (isa_available(i)) isas.push_back(i);
  return isas;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// targets of the given types and widths (all of width k), the first and last with a bias.
void check_multi(const std::vector<DType>& types, const std::vector<int64_t>& outs, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Weight> weights;
  for (size_t i = 0; i < outs.size(); ++i) weights.push_back(make_weight(types[i % types.size()], outs[i], k, rng));
  for (int64_t n : {1, 7, 70}) {
    std::uniform_real_distribution<float> xd(-1.0f, 1.0f);
    std::vector<float> x(size_t(n * k));
    for (float& v : x) v = xd(rng);
    for (Isa isa : available_isas())
      for (bool round_bf16 : {false, true}) {
        std::vector<std::vector<float>> want(outs.size()), got(outs.size());
        std::vector<MatmulTarget> targets;
        for (size_t i = 0; i < outs.size(); ++i) {
          const float* bias = i == 0 || i + 1 == outs.size() ? weights[i].bias.data() : nullptr;
          want[i].assign(size_t(n * outs[i]), 0.0f);
          got[i].assign(size_t(n * outs[i]), NAN);  // every output must be written
          if (round_bf16)
            matmul_round_bf16_with_isa(isa, x.data(), n, weights[i].view, bias, want[i].data());
          else
            matmul_with_isa(isa, x.data(), n, weights[i].view, bias, want[i].data());
          targets.push_back({weights[i].view, bias, got[i].data()});
        }
        matmul_multi_with_isa(isa, x.data(), n, targets, round_bf16);
        for (size_t i = 0; i < outs.size(); ++i)
          ASSERT_TRUE(same_bits(got[i], want[i]))
              << isa_name(isa) << " " << dtype_name(weights[i].view.dtype) << " target " << i << " n=" << n
              << " k=" << k << " round_bf16=" << round_bf16;
      }
  }
}

// Widths: two odd ones and one of several column blocks, so the fused region's units
// cover whole targets, partial tiles and the shrinking tail units.
TEST(MatmulMulti, F32TargetsEqualSeparateCalls) { check_multi({DType::F32}, {37, 5, 700}, 257, 1); }
TEST(MatmulMulti, Bf16TargetsEqualSeparateCalls) { check_multi({DType::BF16}, {37, 5, 700}, 257, 2); }
TEST(MatmulMulti, F16TargetsEqualSeparateCalls) { check_multi({DType::F16}, {37, 5, 700}, 1100, 3); }
TEST(MatmulMulti, Q8_0TargetsEqualSeparateCalls) { check_multi({DType::Q8_0}, {37, 5, 300}, 96, 4); }
TEST(MatmulMulti, Q4_KTargetsEqualSeparateCalls) { check_multi({DType::Q4_K}, {37, 300}, 512, 5); }
// Mixed types (a Q4_K GGUF keeps some tensors in Q6_K) run target by target.
TEST(MatmulMulti, MixedTypesEqualSeparateCalls) { check_multi({DType::F32, DType::BF16, DType::Q8_0}, {9, 40, 3}, 64, 6); }

TEST(MatmulMulti, EmptyListAndZeroRowsWriteNothing) {
  const float x = 1.0f;
  EXPECT_NO_THROW(matmul_multi(&x, 1, {}));
  std::mt19937 rng(7);
  Weight w = make_weight(DType::F32, 3, 4, rng);
  std::vector<float> y(3, 5.0f);
  const MatmulTarget t{w.view, nullptr, y.data()};
  matmul_multi(&x, 0, std::span<const MatmulTarget>(&t, 1));
  EXPECT_EQ(y, std::vector<float>(3, 5.0f));
}

TEST(MatmulMulti, BadTargetNamesTheProblem) {
  std::mt19937 rng(8);
  Weight w = make_weight(DType::F32, 3, 4, rng);
  std::vector<float> x(4, 1.0f), y(3);
  TensorView flat = w.view;
  flat.ndim = 1;
  const MatmulTarget t{flat, nullptr, y.data()};
  try {
    matmul_multi(x.data(), 1, std::span<const MatmulTarget>(&t, 1));
    FAIL() << "a 1-D weight was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be 2-D"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace unmask::ops
