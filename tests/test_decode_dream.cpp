// Dream decoders (diffusion_generate and Fast-dLLM's confidence_threshold) on crafted logits.
#include <gtest/gtest.h>

#include <cmath>

#include "test_decode_util.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {
namespace {

using testing::FakeSource;
using testing::peaked_row;

constexpr int kV = 6;
constexpr int32_t kMask = 5;

// Logits whose softmax is `p` (zero entries get a negligible probability).
std::vector<float> probs_row(const std::vector<double>& p) {
  std::vector<float> r(size_t(kV), -30.0f);
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) r[i] = float(std::log(p[i]));
  return r;
}

// Slot 1: highest max prob; slot 2: highest margin; slot 3: lowest entropy.
FakeSource three_slots() {
  FakeSource f;
  f.vocab = kV;
  f.rows[1] = probs_row({0.50, 0.40, 0.10});                    // max .50, margin .10, H .94
  f.rows[2] = probs_row({0.45, 0.11, 0.11, 0.11, 0.11 + 0.11});  // max .45, margin .23, H 1.42
  f.rows[3] = probs_row({0.49, 0.49, 0.02});                    // max .49, margin 0, H .78
  return f;
}

DreamGenerateOptions dream_opts(DreamAlg alg, int max_new, int steps) {
  DreamGenerateOptions o;
  o.alg = alg;
  o.max_new_tokens = max_new;
  o.steps = steps;
  o.mask_id = kMask;
  return o;
}

// The slot committed by the first of two steps (3 masks: int(3 * 0.4995) = 1 commit).
int first_commit(FakeSource& f, const DreamGenerateOptions& o) {
  std::vector<std::vector<int32_t>> committed;
  dream_generate(f.source(), {0}, o, [&](const StepEvent& e) { committed.push_back(e.committed); });
  EXPECT_EQ(committed.size(), 2u);
  EXPECT_EQ(committed[0].size(), 1u);
  EXPECT_EQ(committed[1].size(), 2u);
  return committed[0].empty() ? -1 : committed[0][0];
}

TEST(DreamGenerate, EachAlgRanksByItsConfidence) {
  FakeSource f = three_slots();
  EXPECT_EQ(first_commit(f, dream_opts(DreamAlg::kMaskgitPlus, 3, 2)), 1);
  EXPECT_EQ(first_commit(f, dream_opts(DreamAlg::kTopkMargin, 3, 2)), 2);
  EXPECT_EQ(first_commit(f, dream_opts(DreamAlg::kEntropy, 3, 2)), 3);
  auto out = dream_generate(f.source(), {0}, dream_opts(DreamAlg::kMaskgitPlus, 3, 2));
  EXPECT_EQ(out, (std::vector<int32_t>{0, 0, 0, 0}));  // every argmax is token 0 (first of equals in slot 3)
  EXPECT_EQ(f.slots.back(), (std::vector<int32_t>{2, 3}));  // only masked slots are queried
}

TEST(DreamGenerate, TopKAndTopPFiltersRenormalise) {
  FakeSource f = three_slots();
  // top_k = 1 (or a tiny top_p) leaves one token per row: every margin is 1 - 0, a tie
  // resolved to the lowest slot.
  auto o = dream_opts(DreamAlg::kTopkMargin, 3, 2);
  o.top_k = 1;
  EXPECT_EQ(first_commit(f, o), 1);
  o.top_k = 0;
  o.top_p = 0.3;
  EXPECT_EQ(first_commit(f, o), 1);
  o.top_k = 2;  // renormalised margins over two tokens: slot 1 .11, slot 2 .34, slot 3 0
  o.top_p = 1.0;
  EXPECT_EQ(first_commit(f, o), 2);
}

TEST(DreamGenerate, ThirtyTwoStepsCommitNothingAtFirst) {
  FakeSource f;
  f.vocab = kV;
  for (int s = 1; s <= 32; ++s) f.rows[s] = peaked_row(kV, s % 5, 0.5 + 0.01 * s);
  const auto out = dream_generate(f.source(), {0}, dream_opts(DreamAlg::kMaskgitPlus, 32, 32));
  ASSERT_EQ(f.canvases.size(), 32u);
  EXPECT_EQ(f.canvases[1][0], f.canvases[0][0]);  // int(32 * (1 - s/t)) = 0 at step 0
  for (int32_t t : out) EXPECT_NE(t, kMask);
}

TEST(DreamGenerate, SampledModesAreSeeded) {
  FakeSource f;
  f.vocab = kV;
  for (int s = 1; s <= 8; ++s) f.rows[s] = {0.3f, 0.1f, 0.2f, 0.25f, 0.15f, -30.0f};  // mask id never drawn
  for (DreamAlg alg : {DreamAlg::kOrigin, DreamAlg::kEntropy}) {
    auto o = dream_opts(alg, 8, 4);
    o.temperature = 0.8;
    o.alg_temp = alg == DreamAlg::kEntropy ? 0.5 : 0.0;
    o.seed = 5;
    const auto a = dream_generate(f.source(), {0}, o);
    EXPECT_EQ(a, dream_generate(f.source(), {0}, o));
    bool differs = false;
    for (uint64_t seed = 6; seed < 10; ++seed) {
      o.seed = seed;
      differs |= dream_generate(f.source(), {0}, o) != a;
    }
    EXPECT_TRUE(differs);
    for (int32_t t : a) EXPECT_NE(t, kMask);  // the last step unmasks everything
  }
}

TEST(DreamGenerate, OriginQueriesOnlyTheSlotsItUnmasks) {
  FakeSource f;
  f.vocab = kV;
  auto o = dream_opts(DreamAlg::kOrigin, 6, 3);
  o.seed = 3;
  std::vector<size_t> committed;
  dream_generate(f.source(), {0}, o, [&](const StepEvent& e) { committed.push_back(e.committed.size()); });
  ASSERT_EQ(f.slots.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(f.slots[i].size(), committed[i]);
}

TEST(DreamThreshold, DefersBelowThresholdAndExtendsOncePerStep) {
  constexpr int V = 8;
  constexpr int32_t M = 7;
  FakeSource f;
  f.vocab = V;
  // Call 0: slot 1 is sure, the rest are not; call 2 onwards: all sure.
  f.fn = [&f](const std::vector<int32_t>&, int, int slot) {
    const bool late = f.slots.size() > 2;  // this call is already recorded
    return peaked_row(V, slot % 5, late || slot == 1 ? 0.99 : 0.2 + 0.01 * slot);
  };
  DreamGenerateOptions o;
  o.alg = DreamAlg::kConfidenceThreshold;
  o.max_new_tokens = 6;
  o.steps = 2;  // 3 per step
  o.threshold = 0.9;
  o.mask_id = M;
  std::vector<size_t> n;
  const auto out = dream_generate(f.source(), {0}, o, [&](const StepEvent& e) { n.push_back(e.committed.size()); });
  // Step 0 commits slot 1 and defers 2; step 1 (the last) takes 3 + 2, commits 1, defers
  // 4 and extends by ONE step; step 2 takes the 4 deferred, now sure.
  EXPECT_EQ(n, (std::vector<size_t>{1, 1, 4}));
  for (int32_t t : out) EXPECT_NE(t, M);
  o.max_new_tokens = 5;
  EXPECT_THROW(dream_generate(f.source(), {0}, o), Error);  // 5 masks % 2 steps
}

TEST(DreamGenerate, RejectsBadOptions) {
  FakeSource f;
  f.vocab = kV;
  auto o = dream_opts(DreamAlg::kEntropy, 4, 0);
  EXPECT_THROW(dream_generate(f.source(), {0}, o), Error);
  o = dream_opts(DreamAlg::kEntropy, 4, 4);
  o.top_p = 0;
  EXPECT_THROW(dream_generate(f.source(), {0}, o), Error);
  o = dream_opts(DreamAlg::kEntropy, 4, 4);
  o.mask_id = -1;
  EXPECT_THROW(dream_generate(f.source(), {0}, o), Error);
  DreamAlg alg;
  EXPECT_TRUE(parse_dream_alg("confidence_threshold", &alg));
  EXPECT_EQ(alg, DreamAlg::kConfidenceThreshold);
  EXPECT_FALSE(parse_dream_alg("greedy", &alg));
}

}  // namespace
}  // namespace unmask
