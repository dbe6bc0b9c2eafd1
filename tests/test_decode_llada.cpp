// LLaDA decoders (ML-GSAI generate, Fast-dLLM generate without cache) on crafted logits.
#include <gtest/gtest.h>

#include "test_decode_util.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {
namespace {

using testing::FakeSource;
using testing::peaked_row;

constexpr int kV = 8;
constexpr int32_t kMask = 7;
const std::vector<int32_t> kPrompt{1, 2};

LladaGenerateOptions llada_opts(int gen, int block, int steps) {
  LladaGenerateOptions o;
  o.gen_length = gen;
  o.block_length = block;
  o.steps = steps;
  o.mask_id = kMask;
  return o;
}

TEST(LladaGenerate, CommitsMostConfidentPerSchedule) {
  FakeSource f;
  f.vocab = kV;
  // Slots 2..5: argmax tokens 3,4,5,6 with confidences 0.6, 0.9, 0.3, 0.8.
  f.rows[2] = peaked_row(kV, 3, 0.6);
  f.rows[3] = peaked_row(kV, 4, 0.9);
  f.rows[4] = peaked_row(kV, 5, 0.3);
  f.rows[5] = peaked_row(kV, 6, 0.8);
  std::vector<std::vector<int32_t>> after;
  const auto out = llada_generate(f.source(), kPrompt, llada_opts(4, 4, 3),
                                  [&](const StepEvent& e) { after.push_back(*e.canvas); });
  // 4 masks / 3 steps -> [2, 1, 1]: {3, 5}, then {2}, then {4}.
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[0], (std::vector<int32_t>{1, 2, kMask, 4, kMask, 6}));
  EXPECT_EQ(after[1], (std::vector<int32_t>{1, 2, 3, 4, kMask, 6}));
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
  ASSERT_EQ(f.slots.size(), 3u);  // one model call per step
  EXPECT_EQ(f.slots[0], (std::vector<int32_t>{2, 3, 4, 5}));
  EXPECT_EQ(f.slots[2], (std::vector<int32_t>{4}));  // only still-masked slots are queried
}

TEST(LladaGenerate, MaskIdArgmaxStaysMaskedAndLeftoversStayEligible) {
  FakeSource f;
  f.vocab = kV;
  f.rows[2] = peaked_row(kV, kMask, 0.95);  // most confident prediction is the mask id itself
  f.rows[3] = peaked_row(kV, 4, 0.5);
  f.rows[4] = peaked_row(kV, 5, 0.9);
  f.rows[5] = peaked_row(kV, 6, 0.8);
  // 2 blocks of 2, 2 steps each: one commit per step.
  const auto out = llada_generate(f.source(), kPrompt, llada_opts(4, 2, 4));
  ASSERT_EQ(f.slots.size(), 4u);
  EXPECT_EQ(f.slots[0], (std::vector<int32_t>{2, 3}));  // block 0 only
  EXPECT_EQ(f.slots[1], (std::vector<int32_t>{2, 3}));  // slot 2 "committed" the mask id twice
  // Block 1 still offers the leftover masks of block 0, and slot 2 wins both steps again.
  EXPECT_EQ(f.slots[2], (std::vector<int32_t>{2, 3, 4, 5}));
  EXPECT_EQ(f.slots[3], (std::vector<int32_t>{2, 3, 4, 5}));
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, kMask, kMask, kMask, kMask}));
}

TEST(LladaGenerate, ClassifierFreeGuidanceInOneCall) {
  FakeSource f;
  f.vocab = 4;
  // Conditional logits prefer token 2 (1.2 > 1); the unconditional ones strongly prefer 2:
  // guidance u + (cfg + 1)(c - u) with cfg = 1 gives [0, 2, -0.6, 0] -> token 1.
  f.fn = [](const std::vector<int32_t>& canvas, int c, int) {
    (void)canvas;
    return c == 0 ? std::vector<float>{0, 1.0f, 1.2f, 0} : std::vector<float>{0, 0, 3.0f, 0};
  };
  LladaGenerateOptions o;
  o.gen_length = o.block_length = o.steps = 1;
  o.mask_id = 3;
  const std::vector<int32_t> prompt{0, 1};
  EXPECT_EQ(llada_generate(f.source(), prompt, o).back(), 2);
  o.cfg_scale = 1.0;
  f.canvases.clear();
  EXPECT_EQ(llada_generate(f.source(), prompt, o).back(), 1);
  ASSERT_EQ(f.canvases.size(), 1u);  // one call with [cond, uncond]
  ASSERT_EQ(f.canvases[0].size(), 2u);
  EXPECT_EQ(f.canvases[0][0], (std::vector<int32_t>{0, 1, 3}));
  EXPECT_EQ(f.canvases[0][1], (std::vector<int32_t>{3, 3, 3}));  // prompt slots masked
}

// Slot 2 predicts EOS (very sure), slot 3 predicts token 1 (less sure); one commit per step.
struct EosFixture {
  static constexpr int V = 6, kEos = 3, kEot = 4, kM = 5;
  FakeSource f;
  explicit EosFixture(int first_token) {
    f.vocab = V;
    f.rows[2] = peaked_row(V, first_token, 0.99);
    f.rows[3] = peaked_row(V, 1, 0.8);
  }
  LladaGenerateOptions opts() const {
    LladaGenerateOptions o;
    o.gen_length = o.block_length = o.steps = 2;
    o.mask_id = kM;
    o.eos_id = kEos;
    o.eot_id = kEot;
    return o;
  }
  std::vector<std::vector<int32_t>> run(const LladaGenerateOptions& o) {
    std::vector<std::vector<int32_t>> after;
    llada_generate(f.source(), {0, 0}, o, [&](const StepEvent& e) { after.push_back(*e.canvas); });
    return after;
  }
};

TEST(LladaGenerate, EosRules) {
  using E = EosFixture;
  {
    E e(E::kEos);
    const auto s = e.run(e.opts());
    EXPECT_EQ(s[0], (std::vector<int32_t>{0, 0, E::kEos, E::kM}));  // plain: EOS is the surest
  }
  {
    E e(E::kEos);
    auto o = e.opts();
    o.confidence_eos_eot_inf = true;  // T = 0: EOS confidence becomes 0 -> committed last
    const auto s = e.run(o);
    EXPECT_EQ(s[0], (std::vector<int32_t>{0, 0, E::kM, 1}));
    EXPECT_EQ(s[1], (std::vector<int32_t>{0, 0, E::kEos, 1}));  // still written as EOS
  }
  {
    E e(E::kEot);
    auto o = e.opts();
    o.confidence_eos_eot_inf = true;  // EoT likewise
    EXPECT_EQ(e.run(o)[0], (std::vector<int32_t>{0, 0, E::kM, 1}));
  }
  {
    E e(E::kEos);
    auto o = e.opts();
    o.logits_eos_inf = true;  // EOS can never be the argmax: the first remaining maximum (token 0) wins
    const auto s = e.run(o);
    EXPECT_EQ(s[1][2], 0);
  }
  {
    // T > 0: the chained assignment only zeroes EoT's probability; EOS keeps its confidence.
    E e(E::kEos);
    e.f.rows[2][E::kEos] = 60.0f;  // so large that Gumbel noise cannot move the argmax: p ~ 1
    e.f.rows[3][1] = 3.0f;         // p ~ 0.83 (its sampled token does not matter here)
    auto o = e.opts();
    o.confidence_eos_eot_inf = true;
    o.temperature = 1.0;
    const auto s = e.run(o);
    EXPECT_EQ(s[0], (std::vector<int32_t>{0, 0, E::kEos, E::kM}));
  }
  {
    E e(E::kEos);
    auto o = e.opts();
    o.logits_eos_inf = true;
    o.eos_id = -1;
    EXPECT_THROW(e.run(o), Error);
  }
}

TEST(LladaGenerate, SeededSamplingIsReproducible) {
  FakeSource f;
  f.vocab = kV;
  for (int s = 2; s < 10; ++s) f.rows[s] = {0.1f, 0.3f, 0.2f, 0.0f, 0.25f, 0.15f, 0.05f, -1.0f};
  auto o = llada_opts(8, 4, 4);
  o.temperature = 1.0;
  o.remasking = Remasking::kRandom;
  o.seed = 11;
  const auto a = llada_generate(f.source(), kPrompt, o);
  EXPECT_EQ(a, llada_generate(f.source(), kPrompt, o));
  bool any_differs = false;
  for (uint64_t seed = 12; seed < 16; ++seed) {
    o.seed = seed;
    any_differs |= llada_generate(f.source(), kPrompt, o) != a;
  }
  EXPECT_TRUE(any_differs);
}

TEST(LladaGenerate, RejectsBadOptions) {
  FakeSource f;
  f.vocab = kV;
  EXPECT_THROW(llada_generate(f.source(), kPrompt, llada_opts(6, 4, 4)), Error);  // 6 % 4
  EXPECT_THROW(llada_generate(f.source(), kPrompt, llada_opts(8, 4, 3)), Error);  // 3 % 2 blocks
  auto o = llada_opts(4, 4, 4);
  o.mask_id = kV;
  EXPECT_THROW(llada_generate(f.source(), kPrompt, o), Error);
  EXPECT_THROW(llada_generate(f.source(), {1, 99}, llada_opts(4, 4, 4)), Error);  // prompt id >= vocab
  LogitSource bad = f.source();
  bad.score = [](const auto&, const auto&, std::vector<float>& out) { out.assign(3, 0.0f); };
  EXPECT_THROW(llada_generate(bad, kPrompt, llada_opts(4, 4, 4)), Error);
}

FastDllmLladaOptions fast_opts(int gen, int block, int steps) {
  FastDllmLladaOptions o;
  o.gen_length = gen;
  o.block_length = block;
  o.steps = steps;
  o.mask_id = kMask;
  return o;
}

TEST(FastDllmLlada, ThresholdCommitsTopOnePlusConfidentOnes) {
  FakeSource f;
  f.vocab = kV;
  f.rows[2] = peaked_row(kV, 3, 0.95);
  f.rows[3] = peaked_row(kV, 4, 0.5);
  f.rows[4] = peaked_row(kV, 5, 0.92);
  f.rows[5] = peaked_row(kV, 6, 0.3);
  auto o = fast_opts(4, 4, 4);
  o.threshold = 0.9;
  std::vector<std::vector<int32_t>> after;
  const auto out = fast_dllm_llada_generate(f.source(), kPrompt, o, [&](const StepEvent& e) { after.push_back(*e.canvas); });
  ASSERT_EQ(after.size(), 3u);  // {2, 4}, then {3} (top-1, below 0.9), then {5}
  EXPECT_EQ(after[0], (std::vector<int32_t>{1, 2, 3, kMask, 5, kMask}));
  EXPECT_EQ(after[1], (std::vector<int32_t>{1, 2, 3, 4, 5, kMask}));
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
  o.threshold = 0.05;  // everything at once
  f.slots.clear();
  fast_dllm_llada_generate(f.source(), kPrompt, o);
  EXPECT_EQ(f.slots.size(), 1u);
}

TEST(FastDllmLlada, ScheduleAndFactor) {
  FakeSource f;
  f.vocab = kV;
  f.rows[2] = peaked_row(kV, 3, 0.99);
  f.rows[3] = peaked_row(kV, 4, 0.9);
  f.rows[4] = peaked_row(kV, 5, 0.5);
  f.rows[5] = peaked_row(kV, 6, 0.3);
  auto o = fast_opts(4, 4, 2);  // schedule [2, 2]
  fast_dllm_llada_generate(f.source(), kPrompt, o);
  EXPECT_EQ(f.slots.size(), 2u);
  o.factor = 1.0;  // sorted 0.99, 0.9, 0.5, 0.3: fails at 2 (0.5 < 0.75) -> 2, then {0.5, 0.3} -> all 2
  f.slots.clear();
  fast_dllm_llada_generate(f.source(), kPrompt, o);
  EXPECT_EQ(f.slots.size(), 2u);
  EXPECT_EQ(f.slots[1], (std::vector<int32_t>{4, 5}));
}

TEST(FastDllmLlada, FailsInsteadOfLoopingForever) {
  FakeSource f;
  f.vocab = kV;
  f.rows[2] = peaked_row(kV, kMask, 0.99);  // the argmax is the mask id: the block never finishes
  f.rows[3] = peaked_row(kV, 4, 0.5);
  auto o = fast_opts(2, 2, 2);
  EXPECT_THROW(fast_dllm_llada_generate(f.source(), kPrompt, o), Error);  // schedule exhausted
  o.threshold = 0.9;
  EXPECT_THROW(fast_dllm_llada_generate(f.source(), kPrompt, o), Error);  // no progress at T = 0
}

}  // namespace
}  // namespace unmask
