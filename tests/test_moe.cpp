// MoE routing (softmax / sigmoid-grouped) on crafted router logits, and the grouped
// expert evaluation against a token-by-token scalar reference on random weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "models/moe.h"
#include "ops/cpu/matmul.h"
#include "ops/ops.h"

namespace unmask {
namespace {

TEST(FamiliesMoe, SoftmaxRoutingKeepsUnrenormalisedProbabilities) {
  MoeConfig moe;
  moe.n_experts = 4;
  moe.top_k = 2;
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 1.0f};
  const MoeRouting r = moe_route(moe, logits.data(), {}, 1);
  double sum = 0;
  for (float l : logits) sum += std::exp(double(l));
  ASSERT_EQ(r.idx, (std::vector<int32_t>{1, 3}));
  EXPECT_NEAR(r.weight[0], std::exp(2.0) / sum, 1e-6);
  EXPECT_NEAR(r.weight[1], std::exp(1.0) / sum, 1e-6);
  EXPECT_LT(r.weight[0] + r.weight[1], 0.95f);  // not renormalised to 1
}

TEST(FamiliesMoe, SigmoidRoutingUsesBiasForSelectionOnlyAndDropsGroups) {
  MoeConfig moe;
  moe.n_experts = 8;
  moe.top_k = 2;
  moe.score = RouterScore::kSigmoid;
  moe.n_group = 2;
  moe.topk_group = 1;
  moe.renormalize = true;
  moe.scaling = 2.5;
  // Group 0 = experts 0..3, group 1 = 4..7. Expert 0 alone is the best logit, but group 1's
  // top-2 sum is larger, so group 0 is dropped entirely.
  const std::vector<float> logits = {3.0f, -3.0f, -3.0f, -3.0f, 1.0f, 1.2f, 0.9f, -2.0f};
  // The bias promotes expert 6 above 4 for selection; weights stay the unbiased sigmoids.
  const std::vector<float> bias = {0, 0, 0, 0, 0, 0, 0.5f, 0};
  const MoeRouting r = moe_route(moe, logits.data(), bias, 1);
  ASSERT_EQ(r.idx, (std::vector<int32_t>{6, 5}));
  const auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  const double s6 = sig(0.9), s5 = sig(1.2);
  EXPECT_NEAR(r.weight[0], s6 / (s6 + s5) * 2.5, 1e-5);
  EXPECT_NEAR(r.weight[1], s5 / (s6 + s5) * 2.5, 1e-5);
}

struct Owned {
  std::vector<std::vector<float>> buffers;
  TensorView matrix(int64_t rows, int64_t cols, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float>& b = buffers.emplace_back(size_t(rows * cols));
    for (float& x : b) x = dist(rng) / std::sqrt(float(cols));
    TensorView t;
    t.data = b.data();
    t.ndim = 2;
    t.shape[0] = rows;
    t.shape[1] = cols;
    return t;
  }
};

// One token through one SwiGLU expert, in double via the scalar matmul reference.
std::vector<float> expert_out(const float* x, const LayerWeights::Expert& e) {
  const int64_t f = e.w_gate.dim(0), d = e.w_down.dim(0);
  std::vector<float> g(static_cast<size_t>(f)), u(static_cast<size_t>(f)), y(static_cast<size_t>(d));
  ops::matmul_reference(x, 1, e.w_gate, nullptr, g.data());
  ops::matmul_reference(x, 1, e.w_up, nullptr, u.data());
  for (int64_t i = 0; i < f; ++i) g[size_t(i)] = g[size_t(i)] / (1.0f + std::exp(-g[size_t(i)])) * u[size_t(i)];
  ops::matmul_reference(g.data(), 1, e.w_down, nullptr, y.data());
  return y;
}

TEST(FamiliesMoe, GroupedExpertsMatchTokenByTokenAndReadEachExpertOnce) {
  std::mt19937 rng(7);
  ModelConfig c;
  c.hidden = 23;
  c.moe.n_experts = 6;
  c.moe.top_k = 2;
  c.moe.expert_ffn = 13;
  c.moe.shared_ffn = 11;
  c.moe.score = RouterScore::kSigmoid;
  c.moe.expert_bias = true;
  c.moe.n_group = 3;
  c.moe.topk_group = 2;
  c.moe.renormalize = true;
  c.moe.scaling = 1.5;
  Owned o;
  LayerWeights L;
  L.router = o.matrix(c.moe.n_experts, c.hidden, rng);
  L.router_bias = o.matrix(1, c.moe.n_experts, rng);
  L.router_bias.ndim = 1;
  L.router_bias.shape[0] = c.moe.n_experts;
  for (int e = 0; e < c.moe.n_experts; ++e)
    L.experts.push_back({o.matrix(13, 23, rng), o.matrix(13, 23, rng), o.matrix(23, 13, rng)});
  L.shared = {o.matrix(11, 23, rng), o.matrix(11, 23, rng), o.matrix(23, 11, rng)};
  const int64_t n = 9;
  std::vector<float> h(size_t(n * c.hidden));
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  for (float& x : h) x = dist(rng);

  std::vector<float> y(h.size(), NAN);
  ForwardOutput stats;
  moe_ffn(c, L, h.data(), n, LinearCall{false, true}, y.data(), &stats);

  std::vector<float> logits(size_t(n * c.moe.n_experts));
  ops::matmul_reference(h.data(), n, L.router, nullptr, logits.data());
  std::vector<float> bias(L.router_bias.f32(), L.router_bias.f32() + c.moe.n_experts);
  const MoeRouting r = moe_route(c.moe, logits.data(), bias, n);
  std::vector<int> used(size_t(c.moe.n_experts), 0);
  for (int64_t t = 0; t < n; ++t) {
    std::vector<double> want(size_t(c.hidden), 0.0);
    for (int j = 0; j < c.moe.top_k; ++j) {
      const int e = r.idx[size_t(t * 2 + j)];
      used[size_t(e)] = 1;
      const std::vector<float> eo = expert_out(h.data() + t * c.hidden, L.experts[size_t(e)]);
      for (int i = 0; i < c.hidden; ++i) want[size_t(i)] += double(r.weight[size_t(t * 2 + j)]) * eo[size_t(i)];
    }
    const std::vector<float> so = expert_out(h.data() + t * c.hidden, L.shared);
    for (int i = 0; i < c.hidden; ++i)
      EXPECT_NEAR(y[size_t(t * c.hidden + i)], want[size_t(i)] + so[size_t(i)], 1e-5) << "token " << t << " dim " << i;
  }
  ASSERT_EQ(stats.router_topk.size(), 1u);
  EXPECT_EQ(stats.router_topk[0], r.idx);
  const double one_expert = 3.0 * 13 * 23 * 4;  // gate + up + down, f32
  int distinct = 0;
  for (int u : used) distinct += u;
  EXPECT_DOUBLE_EQ(stats.expert_bytes, distinct * one_expert);
  EXPECT_DOUBLE_EQ(stats.expert_bytes_token_loop, double(n) * 2 * one_expert);
  EXPECT_LT(stats.expert_bytes, stats.expert_bytes_token_loop);
}

}  // namespace
}  // namespace unmask
