// Commit logic of the block-causal family decoders (LLaDA2, SDAR, Fast-dLLM v2) on
// crafted confidences: thresholds are strict, the schedule floor applies, ties go to the
// lower slot, end tokens stop decoding, and the call / cache pattern is the reference's.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <vector>

#include "decode/block_diffusion.h"
#include "test_decode_util.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {
namespace {

using testing::peaked_row;

TEST(FamiliesCommit, DynamicSelectIsStrictAndFloorsAtTheSchedule) {
  // 0.9 is not > 0.9: only two candidates pass, fewer than n = 3 -> the top 3 by p.
  EXPECT_EQ(decode::dynamic_select({0.95f, 0.9f, 0.2f, 0.99f}, 3, 0.9), (std::vector<int>{3, 0, 1}));
  // Enough above the threshold: all of them, even more than n.
  EXPECT_EQ(decode::dynamic_select({0.95f, 0.91f, 0.2f, 0.99f}, 2, 0.9), (std::vector<int>{0, 1, 3}));
  // Ties at the cut: the lower index first.
  EXPECT_EQ(decode::dynamic_select({0.5f, 0.5f, 0.5f}, 2, 0.9), (std::vector<int>{0, 1}));
  // n larger than the candidates: all.
  EXPECT_EQ(decode::dynamic_select({0.5f, 0.4f}, 5, 0.9).size(), 2u);
}

TEST(FamiliesCommit, ThresholdOrBestIsStrictAndAlwaysCommitsOne) {
  EXPECT_EQ(decode::threshold_or_best_select({0.3f, 0.9f, 0.95f}, 0.9), (std::vector<int>{2}));
  EXPECT_EQ(decode::threshold_or_best_select({0.3f, 0.2f}, 0.9), (std::vector<int>{0}));
  EXPECT_EQ(decode::threshold_or_best_select({0.7f, 0.7f}, 0.9), (std::vector<int>{0}));  // tie: first
  EXPECT_EQ(decode::threshold_or_best_select({0.7f, 0.8f, 0.2f}, 0.05), (std::vector<int>{0, 1, 2}));
  // threshold 1.0: one per call (p <= 1 is never > 1).
  EXPECT_EQ(decode::threshold_or_best_select({1.0f, 1.0f}, 1.0), (std::vector<int>{0}));
}

TEST(FamiliesCommit, EntropyBoundedTakesAscendingEntropyUnderTheBound) {
  // Ascending: 2 (0.05), 0 (0.1), 3 (0.3), 1 (0.5). Running sums 0.05, 0.15, 0.45.
  EXPECT_EQ(decode::entropy_bounded_select({0.1f, 0.5f, 0.05f, 0.3f}, 0.35), (std::vector<int>{2, 0}));
  // Even the lowest over the bound: still one.
  EXPECT_EQ(decode::entropy_bounded_select({0.9f, 0.8f}, 0.35), (std::vector<int>{1}));
  // Strict: a running sum equal to the bound stops.
  EXPECT_EQ(decode::entropy_bounded_select({0.25f, 0.25f}, 0.5), (std::vector<int>{0}));
}

TEST(FamiliesCommit, TokenChoiceTopOneIsCertainAndTemperatureZeroIsArgmax) {
  decode::Rng rng(1);
  std::vector<float> scratch;
  const std::vector<float> row = peaked_row(8, 5, 0.6);
  decode::TokenChoice c = decode::choose_token(row.data(), 8, {0.0, 1.0, 0}, rng, scratch);
  EXPECT_EQ(c.token, 5);
  EXPECT_NEAR(c.prob, 0.6, 1e-5);
  c = decode::choose_token(row.data(), 8, {1.0, 1.0, 1}, rng, scratch);  // top_k = 1: one-hot
  EXPECT_EQ(c.token, 5);
  EXPECT_FLOAT_EQ(c.prob, 1.0f);
  EXPECT_NEAR(c.entropy, 0.0, 1e-6);
}

// ---- LLaDA2 ------------------------------------------------------------------------

constexpr int kVocab = 16;
constexpr int32_t kMask = 15, kEos = 14;

TEST(FamiliesLlada2, ThresholdScheduleFloorAndEosStop) {
  testing::FakeSource fake;
  fake.vocab = kVocab;
  // Block 1 = slots 4..7 (prompt of 4). p: slot 4 0.97, 5 0.94, 6 0.5, 7 0.3. Step 0 schedule (4 slots, 2 steps) = 2: only one passes -> floor:
  // top 2 (slots 4, 5). Step 1: slot 6 (0.5), 7 (eos, 0.3): floor 2 -> both.
  fake.fn = [](const std::vector<int32_t>&, int, int slot) {
    const double p[] = {0.97, 0.94, 0.5, 0.3};
    return peaked_row(kVocab, slot == 7 ? kEos : slot, p[slot - 4]);
  };
  LogitSource src = fake.source();
  src.attention_block = 4;
  Llada2GenerateOptions o;
  o.gen_length = 8;
  o.block_length = 4;
  o.steps = 2;
  o.threshold = 0.95;
  o.mask_id = kMask;
  o.eos_id = kEos;
  const BlockGenerateResult r = llada2_generate(src, {1, 2, 3, 1}, o);
  ASSERT_EQ(fake.slots.size(), 2u);  // block 2 never runs: block 1 holds eos
  EXPECT_EQ(fake.slots[0], (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_EQ(fake.slots[1], (std::vector<int32_t>{6, 7}));
  EXPECT_EQ(fake.canvases[0][0].size(), 8u);  // the canvas up to the block's end
  EXPECT_EQ(r.output, (std::vector<int32_t>{1, 2, 3, 1, 4, 5, 6, kEos}));
  EXPECT_EQ(r.canvas.size(), 12u);
  EXPECT_EQ(r.canvas[8], kMask);
}

TEST(FamiliesLlada2, AboveThresholdCommitsMoreThanTheSchedule) {
  testing::FakeSource fake;
  fake.vocab = kVocab;
  fake.fn = [](const std::vector<int32_t>&, int, int slot) { return peaked_row(kVocab, slot % 10, 0.99); };
  LogitSource src = fake.source();
  src.attention_block = 4;
  Llada2GenerateOptions o;
  o.gen_length = 4;
  o.block_length = 4;
  o.steps = 4;  // schedule 1 per step, but all four pass 0.95
  o.mask_id = kMask;
  o.eos_id = kEos;
  const BlockGenerateResult r = llada2_generate(src, {1, 2}, o);
  EXPECT_EQ(fake.slots.size(), 2u);  // block 0 (prompt tail + 2) then block 1, one call each
  EXPECT_EQ(r.output, (std::vector<int32_t>{1, 2, 2, 3, 4, 5}));
  src.attention_block = 0;
  EXPECT_THROW(llada2_generate(src, {1, 2}, o), Error);  // bidirectional source: refused
}

// ---- cached sources (SDAR, Fast-dLLM v2) ------------------------------------------------

struct CachedFake {
  std::function<std::vector<float>(const std::vector<int32_t>& canvas, int slot)> fn;
  std::vector<CachedQuery> queries;
  std::vector<std::vector<int32_t>> canvases;
  LogitSource source(int block) {
    LogitSource src;
    src.vocab = kVocab;
    src.attention_block = block;
    src.score_cached = [this](const std::vector<int32_t>& canvas, const CachedQuery& q, std::vector<float>& out) {
      queries.push_back(q);
      canvases.push_back(canvas);
      out.clear();
      std::vector<int32_t> slots = q.slots;
      if (q.next_token_row) slots.push_back(q.query_end);
      for (int32_t s : slots) {
        const std::vector<float> r = fn(canvas, s);
        out.insert(out.end(), r.begin(), r.end());
      }
    };
    return src;
  }
};

TEST(FamiliesSdar, ExactCacheCallPatternAndSequentialCommits) {
  CachedFake fake;
  fake.fn = [](const std::vector<int32_t>&, int slot) { return peaked_row(kVocab, slot % 10, 0.9); };
  SdarGenerateOptions o;
  o.gen_length = 6;
  o.block_length = 4;
  o.denoising_steps = 2;
  o.strategy = SdarStrategy::kSequential;
  o.mask_id = kMask;
  o.stop_ids = {kEos};
  const std::vector<int32_t> x = sdar_generate(fake.source(4), {1, 2, 3, 4, 5}, o);
  // Prefill [0, 4) stored; block [4, 8): 3 masks, schedule [2, 2] -> 2 calls + store;
  // block [8, 12): 4 masks -> 2 calls + store.
  ASSERT_EQ(fake.queries.size(), 7u);
  EXPECT_TRUE(fake.queries[0].store_kv);
  EXPECT_EQ(fake.queries[0].query_end, 4);
  EXPECT_EQ(fake.queries[1].slots, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_FALSE(fake.queries[1].store_kv);
  EXPECT_EQ(fake.queries[2].slots, (std::vector<int32_t>{7}));
  EXPECT_TRUE(fake.queries[3].store_kv);
  EXPECT_TRUE(fake.queries[3].slots.empty());
  // The stored call sees no mask: K/V are only ever stored for finished blocks.
  for (size_t i = 0; i < fake.queries.size(); ++i) {
    const CachedQuery& q = fake.queries[i];
    if (!q.store_kv) continue;
    for (int p = q.query_begin; p < q.query_end; ++p) EXPECT_NE(fake.canvases[i][size_t(p)], kMask) << "call " << i;
  }
  EXPECT_EQ(fake.queries[4].cached_spans, (std::vector<std::pair<int32_t, int32_t>>{{0, 8}}));
  EXPECT_EQ(x, (std::vector<int32_t>{1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 0, 1}));
}

TEST(FamiliesSdar, DynamicStrategyIsStrictAndStopIdEndsAfterItsBlock) {
  CachedFake fake;
  // Slot 4: 0.8 (under the threshold); slots 5..7 0.9; slot 6 predicts the stop id.
  fake.fn = [](const std::vector<int32_t>&, int slot) {
    return peaked_row(kVocab, slot == 6 ? kEos : slot, slot == 4 ? 0.8 : 0.9);
  };
  SdarGenerateOptions o;
  o.gen_length = 8;
  o.block_length = 4;
  o.denoising_steps = 4;  // schedule 1 per step
  o.confidence_threshold = 0.85;
  o.mask_id = kMask;
  o.stop_ids = {kEos};
  const std::vector<int32_t> x = sdar_generate(fake.source(4), {1, 2, 3, 4}, o);
  // Step 0: slots 5, 6, 7 pass (3 >= 1); step 1: slot 4 alone (floor 1); then the store call.
  ASSERT_EQ(fake.queries.size(), 4u);
  EXPECT_EQ(fake.queries[2].slots, (std::vector<int32_t>{4}));
  EXPECT_EQ(x.size(), 12u);
  EXPECT_EQ(x[6], kEos);
  EXPECT_EQ(x[8], kMask);  // the next block never ran
}

TEST(FamiliesFastDllmV2, SubBlocksThresholdArTokenAndStop) {
  CachedFake fake;
  // Canvas slot s predicts token s % 10 with p 0.95, except slot 5 (p 0.5) and the AR
  // prediction of slot 8, which is the stop token.
  fake.fn = [](const std::vector<int32_t>&, int slot) {
    if (slot == 8) return peaked_row(kVocab, kEos, 0.99);
    return peaked_row(kVocab, slot % 10, slot == 5 ? 0.5 : 0.95);
  };
  FastDllmV2Options o;
  o.max_new_tokens = 16;
  o.block_size = 4;
  o.small_block_size = 2;
  o.threshold = 0.9;
  o.mask_id = kMask;
  o.stop_token = kEos;
  const std::vector<int32_t> x = fast_dllm_v2_generate(fake.source(4), {1, 2, 3, 4, 7}, o);
  // Prefill [0, 4) stored. Block [4, 8): sub-block [4, 6): slot 5 (0.5) commits as the
  // best; sub-block [6, 8): both > 0.9. Finished block stored, AR token = stop -> done.
  ASSERT_EQ(fake.queries.size(), 4u);
  EXPECT_TRUE(fake.queries[0].store_kv);
  EXPECT_EQ(fake.queries[1].slots, (std::vector<int32_t>{5}));
  EXPECT_EQ(fake.queries[2].slots, (std::vector<int32_t>{6, 7}));
  EXPECT_TRUE(fake.queries[3].store_kv);
  EXPECT_TRUE(fake.queries[3].next_token_row);
  EXPECT_EQ(x, (std::vector<int32_t>{1, 2, 3, 4, 7, 5, 6, 7, kEos}));
}

TEST(FamiliesFastDllmV2, BlockCacheFeedsOnlyTheSubBlockOnceItsFirstSlotIsKnown) {
  CachedFake fake;
  fake.fn = [](const std::vector<int32_t>&, int slot) { return peaked_row(kVocab, slot % 10, 0.95); };
  FastDllmV2Options o;
  o.max_new_tokens = 4;
  o.block_size = 4;
  o.small_block_size = 2;
  o.threshold = 1.0;  // one slot per call
  o.use_block_cache = true;
  o.mask_id = kMask;
  o.stop_token = kEos;
  const std::vector<int32_t> x = fast_dllm_v2_generate(fake.source(4), {1, 2}, o);
  // Block [0, 4): sub-block [0, 2) has no mask; [2, 4): slot 2 masked -> whole-block call
  // commits slot 2 (tie with slot 3: the first); then slot 3 via a sub-block call.
  ASSERT_EQ(fake.queries.size(), 3u);
  EXPECT_EQ(fake.queries[0].query_begin, 0);
  EXPECT_EQ(fake.queries[0].query_end, 4);
  EXPECT_EQ(fake.queries[0].slots, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(fake.queries[1].query_begin, 2);
  EXPECT_EQ(fake.queries[1].query_end, 4);
  EXPECT_EQ(fake.queries[1].cached_spans, (std::vector<std::pair<int32_t, int32_t>>{{0, 2}}));
  EXPECT_EQ(fake.queries[1].slots, (std::vector<int32_t>{3}));
  EXPECT_TRUE(fake.queries[2].next_token_row);
  EXPECT_EQ(x, (std::vector<int32_t>{1, 2, 2, 3, 4}));
}

}  // namespace
}  // namespace unmask
