// Unit tests of the decoder parts: schedules, scoring, sampling, commit rules.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "decode/commit.h"
#include "decode/sampling.h"
#include "decode/schedule.h"
#include "decode/scoring.h"
#include "unmask/error.h"

namespace unmask::decode {
namespace {

TEST(DecodeSchedule, LladaTransferTokens) {
  EXPECT_EQ(llada_num_transfer_tokens(16, 3), (std::vector<int>{6, 5, 5}));
  EXPECT_EQ(llada_num_transfer_tokens(32, 12), (std::vector<int>{3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2}));
  EXPECT_EQ(llada_num_transfer_tokens(5, 8), (std::vector<int>{1, 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(llada_num_transfer_tokens(8, 2), (std::vector<int>{4, 4}));
}

TEST(DecodeSchedule, LladaBlockLayout) {
  const auto l = llada_block_layout(32, 8, 16, "t");
  EXPECT_EQ(l.num_blocks, 4);
  EXPECT_EQ(l.steps_per_block, 4);
  EXPECT_THROW(llada_block_layout(32, 5, 16, "t"), Error);   // 32 % 5
  EXPECT_THROW(llada_block_layout(32, 8, 6, "t"), Error);    // 6 % 4 blocks
  EXPECT_THROW(llada_block_layout(32, 8, 0, "t"), Error);
  EXPECT_THROW(llada_block_layout(0, 8, 4, "t"), Error);
  EXPECT_THROW(llada_block_layout(32, 0, 4, "t"), Error);
}

TEST(DecodeSchedule, DreamTimesteps) {
  const std::vector<float> ts = dream_timesteps(16, 1e-3);
  ASSERT_EQ(ts.size(), 17u);
  EXPECT_EQ(ts.front(), 1.0f);
  EXPECT_EQ(ts.back(), float(1e-3));  // the second half is computed from the end point
  for (size_t i = 1; i < ts.size(); ++i) EXPECT_LT(ts[i], ts[i - 1]);
  EXPECT_NEAR(ts[8], 1.0 - 8 * 0.999 / 16, 1e-6);
}

// Counts per step for 32 masked slots, as recorded by the Dream fixtures
// (positions_changed_per_row of hf_maskgit_plus_steps{16,32,12}).
std::vector<int> simulate_dream_counts(int masks, int steps) {
  const std::vector<float> ts = dream_timesteps(steps, 1e-3);
  std::vector<int> out;
  for (int i = 0; i < steps; ++i) {
    const int k = dream_transfer_count(masks, ts[size_t(i)], ts[size_t(i) + 1], i == steps - 1);
    out.push_back(k);
    masks -= k;
  }
  return out;
}

TEST(DecodeSchedule, DreamCountsMatchReference) {
  std::vector<int> s16(16, 2);
  s16.front() = 1;
  s16.back() = 3;
  EXPECT_EQ(simulate_dream_counts(32, 16), s16);
  std::vector<int> s32(32, 1);
  s32.front() = 0;  // steps = 32: the first step commits nothing (int(32 * 0.0312) = 0)
  s32.back() = 2;
  EXPECT_EQ(simulate_dream_counts(32, 32), s32);
  EXPECT_EQ(simulate_dream_counts(32, 12), (std::vector<int>{2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4}));
}

TEST(DecodeSchedule, DreamCountTruncates) {
  EXPECT_EQ(dream_transfer_count(10, 1.0f, 0.75f, false), 2);   // 2.5 -> 2
  EXPECT_EQ(dream_transfer_count(32, 1.0f, 0.96875f, false), 1);  // exactly 1.0
  EXPECT_EQ(dream_transfer_count(3, 0.5f, 0.25f, false), 1);    // 1.5 -> 1
  EXPECT_EQ(dream_transfer_count(7, 0.5f, 0.25f, true), 7);     // last step: all
}

TEST(DecodeScoring, Softmax) {
  const float l[3] = {0.0f, std::log(3.0f), -INFINITY};
  float p[3];
  double q[3];
  softmax_f32(l, 3, p);
  softmax_f64(l, 3, q);
  EXPECT_NEAR(p[0], 0.25, 1e-7);
  EXPECT_NEAR(p[1], 0.75, 1e-7);
  EXPECT_EQ(p[2], 0.0f);
  // float32(ln 3) is off by ~3e-8 relative, which moves p by ~1e-8; the f64 softmax adds nothing.
  EXPECT_NEAR(q[0], 0.25, 2e-8);
  EXPECT_NEAR(q[1], 0.75, 2e-8);
  EXPECT_EQ(q[2], 0.0);
  // Large logits do not overflow: the maximum is subtracted first.
  const float big[2] = {1000.0f, 1000.0f};
  softmax_f32(big, 2, p);
  EXPECT_FLOAT_EQ(p[0], 0.5f);
}

TEST(DecodeScoring, ArgmaxReturnsFirstMaximum) {
  const float v[5] = {1, 3, 3, 2, 3};
  EXPECT_EQ(argmax_first(v, 5), 1);
}

TEST(DecodeScoring, TopKFilterKeepsTiesAtTheBoundary) {
  float a[5] = {1, 5, 3, 5, 2};
  top_k_filter(a, 5, 2);
  EXPECT_EQ(a[1], 5);
  EXPECT_EQ(a[3], 5);
  EXPECT_EQ(a[0], kFloat32Lowest);
  EXPECT_EQ(a[2], kFloat32Lowest);
  EXPECT_EQ(a[4], kFloat32Lowest);
  float b[4] = {4, 3, 3, 1};
  top_k_filter(b, 4, 2);  // the k-th value (3) is tied: both 3s stay
  EXPECT_EQ(b[1], 3);
  EXPECT_EQ(b[2], 3);
  EXPECT_EQ(b[3], kFloat32Lowest);
  float c[3] = {1, 2, 3};
  top_k_filter(c, 3, 50);  // k >= n: unchanged
  EXPECT_EQ(c[0], 1);
}

TEST(DecodeScoring, TopPFilter) {
  // Probabilities 0.05, 0.5, 0.15, 0.3 in a shuffled order.
  const float base[4] = {std::log(0.05f), std::log(0.5f), std::log(0.15f), std::log(0.3f)};
  float a[4];
  std::copy(base, base + 4, a);
  top_p_filter(a, 4, 0.7);  // cumulative 0.5, 0.8 (crosses: kept), 0.95, 1.0
  EXPECT_EQ(a[1], base[1]);
  EXPECT_EQ(a[3], base[3]);
  EXPECT_EQ(a[2], kFloat32Lowest);
  EXPECT_EQ(a[0], kFloat32Lowest);
  std::copy(base, base + 4, a);
  top_p_filter(a, 4, 0.45);  // even the top-1 crosses: it alone is kept
  EXPECT_EQ(a[1], base[1]);
  EXPECT_EQ(a[3], kFloat32Lowest);
}

TEST(DecodeScoring, MarginAndEntropy) {
  const float p[3] = {0.1f, 0.6f, 0.3f};
  EXPECT_NEAR(margin_confidence(p, 3), 0.3, 1e-7);
  const float tie[3] = {0.4f, 0.4f, 0.2f};
  EXPECT_EQ(margin_confidence(tie, 3), 0.0f);
  const float uniform[4] = {0.25f, 0.25f, 0.25f, 0.25f};
  EXPECT_NEAR(neg_entropy(uniform, 4), std::log(0.25), 1e-6);
  const float onehot[3] = {0.0f, 1.0f, 0.0f};
  EXPECT_NEAR(neg_entropy(onehot, 3), 0.0, 1e-6);
}

TEST(DecodeSampling, SameSeedSameDraws) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const double x = a.uniform();
    EXPECT_EQ(x, b.uniform());
    EXPECT_GE(x, 0.0);
    EXPECT_LT(x, 1.0);
    differs |= x != c.uniform();
  }
  EXPECT_TRUE(differs);
}

TEST(DecodeSampling, GumbelArgmaxFollowsSoftmax) {
  // softmax([0, ln 3]) = [0.25, 0.75] at temperature 1.
  const float l[2] = {0.0f, std::log(3.0f)};
  Rng rng(7);
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ones += gumbel_argmax(l, 2, 1.0, rng);
  EXPECT_NEAR(double(ones) / n, 0.75, 0.02);  // 0.02 = 6.5 standard errors of a 20000-draw mean
  // A low temperature sharpens towards the argmax.
  int sharp = 0;
  for (int i = 0; i < 2000; ++i) sharp += gumbel_argmax(l, 2, 0.05, rng);
  EXPECT_EQ(sharp, 2000);
  // -inf logits are never drawn.
  const float m[3] = {-INFINITY, 0.0f, -INFINITY};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(gumbel_argmax(m, 3, 1.0, rng), 1);
}

TEST(DecodeSampling, CategoricalAndWithoutReplacement) {
  const float p[4] = {0.0f, 0.2f, 0.0f, 0.8f};
  Rng rng(1);
  int threes = 0;
  for (int i = 0; i < 10000; ++i) {
    const int v = sample_categorical(p, 4, rng);
    ASSERT_TRUE(v == 1 || v == 3);
    threes += v == 3;
  }
  EXPECT_NEAR(threes / 10000.0, 0.8, 0.02);  // ~5 standard errors
  const std::vector<float> w{0.5f, 0.0f, 0.3f, 0.2f, 0.0f};
  Rng r1(9), r2(9);
  const std::vector<int> s = sample_without_replacement(w, 4, r1);
  EXPECT_EQ(s, sample_without_replacement(w, 4, r2));
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(std::set<int>(s.begin(), s.end()).size(), 4u);
  EXPECT_EQ(s[3], 1);  // positive weights first, then the lowest zero-weight index
}

TEST(DecodeCommit, TopKBreaksTiesByLowerIndex) {
  const std::vector<float> c{0.5f, 0.9f, 0.5f, 0.7f, 0.5f};
  EXPECT_EQ(top_k_indices(c, 3), (std::vector<int>{1, 3, 0}));
  EXPECT_EQ(top_k_indices(c, 10).size(), 5u);
  EXPECT_TRUE(top_k_indices(c, 0).empty());
}

TEST(DecodeCommit, ThresholdAlwaysKeepsTheBest) {
  const std::vector<double> c{0.3, 0.95, 0.5, 0.92};
  auto below = [](double x) { return x < 0.9; };
  EXPECT_EQ(threshold_select(c, 4, below), (std::vector<int>{1, 3}));
  const std::vector<double> low{0.3, 0.2};
  EXPECT_EQ(threshold_select(low, 2, below), (std::vector<int>{0}));  // top-1 even below the threshold
  const std::vector<double> eq{0.9, 0.9};
  EXPECT_EQ(threshold_select(eq, 2, below).size(), 2u);  // equal to the threshold is not below it
}

TEST(DecodeCommit, FactorRule) {
  // f = 1: thresholds -1, 1 - 1/3, 1 - 1/4, 1 - 1/5, ...
  EXPECT_EQ(factor_rule_count({0.99, 0.5, 0.4, 0.3}, 1.0), 1);        // fails at 1
  EXPECT_EQ(factor_rule_count({0.99, 0.9, 0.7, 0.1, 0.1}, 1.0), 2);   // fails at 2 (0.7 < 0.75)
  EXPECT_EQ(factor_rule_count({0.99, 0.9, 0.5}, 1.0), 3);             // fails at the LAST: commits all
  EXPECT_EQ(factor_rule_count({0.99, 0.99, 0.99}, 1.0), 3);           // never fails
  EXPECT_EQ(factor_rule_count({0.1}, 1.0), 1);
  EXPECT_EQ(factor_rule_count({0.2, 0.9}, 1.0), 2);  // sorted first: 0.9, 0.2 fails at the last
}

}  // namespace
}  // namespace unmask::decode
