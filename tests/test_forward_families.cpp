// The forward's family parameters: block-causal attention (kernel vs reference, and
// what it hides), SDAR's exact KV cache path, and block-causal MoE forwards.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "models/random_model.h"
#include "ops/ops.h"
#include "unmask/model.h"

namespace unmask {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = dist(rng);
    while (x == 0.0f);
  }
  return v;
}

TEST(FamiliesForward, BlockCausalAttentionMatchesReferenceAndHidesLaterBlocks) {
  const ops::AttentionShape shape{6, 2, 5};
  const int64_t nq = 7, nk = 11;
  const std::vector<float> q = random_values(size_t(nq * 6 * 5), 1), k = random_values(size_t(nk * 2 * 5), 2),
                           v = random_values(size_t(nk * 2 * 5), 3);
  // Queries at positions 4..10, keys at 0..10; blocks of 3: query at 4 sees keys 0..5.
  std::vector<int32_t> qpos, kpos;
  for (int i = 0; i < nq; ++i) qpos.push_back(4 + i);
  for (int i = 0; i < nk; ++i) kpos.push_back(i);
  const ops::AttentionMask mask{3, qpos.data(), kpos.data()};
  std::vector<float> out(q.size(), NAN), ref(q.size(), NAN);
  ops::attention_seq(q.data(), nq, k.data(), v.data(), nk, shape, false, out.data(), mask);
  ops::attention_seq_reference(q.data(), nq, k.data(), v.data(), nk, shape, ref.data(), mask);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 1e-5) << i;
  // Query 0 (position 4, block 1) must equal unmasked attention over keys 0..5 only.
  std::vector<float> first(size_t(6 * 5), NAN);
  ops::attention_seq_reference(q.data(), 1, k.data(), v.data(), 6, shape, first.data());
  for (int i = 0; i < 6 * 5; ++i) EXPECT_NEAR(out[size_t(i)], first[size_t(i)], 1e-5) << i;
  // And differ from bidirectional attention over all keys (the mask does something).
  std::vector<float> full(q.size(), NAN);
  ops::attention_seq_reference(q.data(), nq, k.data(), v.data(), nk, shape, full.data());
  double diff = 0;
  for (int i = 0; i < 6 * 5; ++i) diff = std::max(diff, double(std::fabs(full[size_t(i)] - out[size_t(i)])));
  EXPECT_GT(diff, 1e-3);
}

std::unique_ptr<Model> small(const std::string& family) {
  RandomModelSpec s;
  s.family = family;
  s.hidden = 32;
  s.layers = 2;
  s.heads = 4;
  s.kv_heads = 2;
  s.ffn = 48;
  s.vocab = 61;
  s.experts = 8;
  s.top_k = 2;
  s.expert_ffn = 16;
  s.block = 4;
  s.seed = 11;
  return make_random_model(s);
}

std::vector<float> logits_of(const Model& m, const std::vector<int32_t>& tokens, int first_pos, SequenceKv kv = {},
                             int block = -1) {
  ForwardBatch b;
  b.tokens = tokens;
  for (size_t i = 0; i < tokens.size(); ++i) {
    b.positions.push_back(first_pos + int(i));
    b.logit_rows.push_back(int(i));
  }
  if (kv.cache) b.kv = {kv};
  b.attention_block = block;
  ForwardOutput out;
  forward(m, b, &out);
  return out.logits;
}

// SDAR's decoding path: prefill the finished blocks (K/V stored), then a block alone over
// the cached prefix, must give the same logits as one block-causal forward of everything.
TEST(FamiliesForward, SdarCachedBlockEqualsFullBlockCausalForward) {
  const auto m = small("sdar");
  ASSERT_EQ(m->config.attention_block, 4);
  const std::vector<int32_t> tokens = {5, 17, 3, 60, 8, 8, 41, 2, 33, 19, 7};
  const std::vector<float> full = logits_of(*m, tokens, 0);
  KvCache cache;
  cache.reset(m->config, 12);
  const std::vector<float> prefill =
      logits_of(*m, {tokens.begin(), tokens.begin() + 8}, 0, SequenceKv{&cache, {}, true});
  const std::vector<float> block = logits_of(*m, {tokens.begin() + 8, tokens.end()}, 8, SequenceKv{&cache, {{0, 8}}, false});
  const int V = m->config.vocab;
  for (int i = 0; i < 8 * V; ++i) ASSERT_NEAR(prefill[size_t(i)], full[size_t(i)], 1e-4) << i;
  for (int i = 0; i < 3 * V; ++i) ASSERT_NEAR(block[size_t(i)], full[size_t(8 * V + i)], 1e-4) << i;
  // Bidirectional attention gives other logits for the early rows: the pattern is applied.
  const std::vector<float> bidir = logits_of(*m, tokens, 0, {}, 0);
  double diff = 0;
  for (int i = 0; i < 4 * V; ++i) diff = std::max(diff, double(std::fabs(bidir[size_t(i)] - full[size_t(i)])));
  EXPECT_GT(diff, 1e-3);
}

TEST(FamiliesForward, Llada2MoeEarlyBlocksIgnoreLaterTokens) {
  const auto m = small("llada2");
  const std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8, 9}, b = {1, 2, 3, 4, 5, 6, 7, 8, 50};
  const std::vector<float> la = logits_of(*m, a, 0), lb = logits_of(*m, b, 0);
  const int V = m->config.vocab;
  // Not bit-equal: the expert batches differ in size when token 8 routes elsewhere.
  for (int i = 0; i < 8 * V; ++i) ASSERT_NEAR(la[size_t(i)], lb[size_t(i)], 1e-5) << i;
  double diff = 0;
  for (int i = 8 * V; i < 9 * V; ++i) diff = std::max(diff, double(std::fabs(la[size_t(i)] - lb[size_t(i)])));
  EXPECT_GT(diff, 1e-3);
  EXPECT_LT(active_parameter_count(*m), parameter_count(*m));
}

}  // namespace
}  // namespace unmask
