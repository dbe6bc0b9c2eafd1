// unmask's block decoder: its parts (fused scoring, commit rules, cache windows, infill
// templates) on crafted inputs, the decoder on recording fake sources, and the decoder
// on the tiny fixture models against llada_generate.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "decode/block_cache.h"
#include "decode/block_commit.h"
#include "decode/block_scoring.h"
#include "test_decode_util.h"
#include "unmask/decode.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask {
namespace {

using testing::peaked_row;

constexpr int kV = 8;
constexpr int32_t kMask = 7;
constexpr int32_t kEos = 6;
using Spans = std::vector<std::pair<int32_t, int32_t>>;

// ---- scoring ------------------------------------------------------------------------

TEST(BlockScoring, FusedMatchesTheMaterialisedReference) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 2 + trial % 300;
    // Wide logits (scale up to 40) push the online rescaling through many new maxima.
    const float scale = 0.1f + float(trial % 9) * 5.0f;
    std::vector<float> row(static_cast<size_t>(n));
    for (float& l : row) l = normal(gen) * scale;
    const int32_t exclude = trial % 3 == 0 ? -1 : trial % n;
    const decode::RowStats f = decode::fused_row_stats(row.data(), n, exclude);
    const decode::ReferenceScores r = decode::reference_row_stats(row.data(), n, exclude);
    ASSERT_EQ(f.top1, r.top1) << "trial " << trial;
    EXPECT_NE(f.top1, exclude);
    // Both are float64 over the same numbers in a different order: a few ulps of the
    // largest term, far below 1e-12 for probabilities and |entropy| <= log(300).
    EXPECT_NEAR(f.confidence(), r.confidence, 1e-12) << "trial " << trial;
    EXPECT_NEAR(f.margin(), r.margin, 1e-12) << "trial " << trial;
    EXPECT_NEAR(f.neg_entropy(), r.neg_entropy, 1e-10) << "trial " << trial;
  }
}

TEST(BlockScoring, CraftedRows) {
  // Uniform over 4: confidence 1/4, margin 0 (ties keep the first index), entropy -log 4.
  const std::vector<float> flat{2, 2, 2, 2};
  const decode::RowStats u = decode::fused_row_stats(flat.data(), 4, -1);
  EXPECT_EQ(u.top1, 0);
  EXPECT_EQ(u.top2, 1);
  EXPECT_DOUBLE_EQ(u.confidence(), 0.25);
  EXPECT_DOUBLE_EQ(u.margin(), 0.0);
  EXPECT_NEAR(u.neg_entropy(), -std::log(4.0), 1e-15);  // exact up to log's rounding
  // The excluded (mask) entry is the largest: it still counts in the normaliser.
  const std::vector<float> masked{0, std::log(3.0f), 5, 0};
  const decode::RowStats m = decode::fused_row_stats(masked.data(), 4, 2);
  EXPECT_EQ(m.top1, 1);
  EXPECT_EQ(m.top2, 0);
  const double z = 1 + 3 + std::exp(5.0) + 1;
  EXPECT_NEAR(m.confidence(), 3 / z, 1e-7);  // log(3) rounded to float: ~1e-7 relative
  EXPECT_NEAR(m.margin(), 2 / z, 1e-7);
  EXPECT_DOUBLE_EQ(m.score(BlockScore::kConfidence), m.confidence());
  EXPECT_DOUBLE_EQ(m.score(BlockScore::kMargin), m.margin());
  EXPECT_DOUBLE_EQ(m.score(BlockScore::kNegEntropy), m.neg_entropy());
}

// ---- commit rules -------------------------------------------------------------------

TEST(BlockCommitRules, TopN) {
  const std::vector<double> c{0.2, 0.9, 0.5, 0.7};
  EXPECT_EQ(decode::commit_top_n(c, 2), (std::vector<int>{1, 3}));
  EXPECT_EQ(decode::commit_top_n(c, 0), (std::vector<int>{1}));  // at least one
  EXPECT_EQ(decode::commit_top_n(c, 9), (std::vector<int>{1, 3, 2, 0}));
  EXPECT_TRUE(decode::commit_top_n({}, 3).empty());
}

TEST(BlockCommitRules, ThresholdWithTopOneFallback) {
  const std::vector<double> c{0.2, 0.9, 0.5, 0.7};
  EXPECT_EQ(decode::commit_threshold(c, 0.6), (std::vector<int>{1, 3}));
  EXPECT_EQ(decode::commit_threshold(c, 0.7), (std::vector<int>{1, 3}));  // >= commits
  EXPECT_EQ(decode::commit_threshold(c, 0.95), (std::vector<int>{1}));   // fallback
  EXPECT_EQ(decode::commit_threshold(c, 0.0).size(), 4u);
}

TEST(BlockCommitRules, FactorLargestPrefixAboveTheBound) {
  // Sorted 0.99, 0.9, 0.8, 0.3 against 1 - f/(i+1), f = 1: 0.5, 0.667, 0.75, 0.8 -> 3.
  const std::vector<double> c{0.3, 0.9, 0.99, 0.8};
  EXPECT_EQ(decode::factor_count(c, 1.0), 3);
  EXPECT_EQ(decode::commit_factor(c, 1.0), (std::vector<int>{2, 1, 3}));
  // f = 0.2: bounds 0.9, 0.933: 0.99 passes, 0.9 fails -> 1.
  EXPECT_EQ(decode::factor_count(c, 0.2), 1);
  // Nothing passes (0.4 < 0.5): the top-1 still commits.
  EXPECT_EQ(decode::commit_factor({0.1, 0.4}, 1.0), (std::vector<int>{1}));
  // Everything passes: all of them (no off-by-one at the end).
  EXPECT_EQ(decode::factor_count({0.999, 0.998, 0.997}, 1.0), 3);
}

TEST(BlockCommitRules, DynamicWithFloor) {
  const std::vector<double> c{0.95, 0.3, 0.92, 0.5};
  EXPECT_EQ(decode::commit_dynamic(c, 0.9, 1), (std::vector<int>{0, 2}));     // 2 above >= floor 1
  EXPECT_EQ(decode::commit_dynamic(c, 0.9, 3), (std::vector<int>{0, 2, 3}));  // floor 3 wins
  EXPECT_EQ(decode::commit_dynamic(c, 0.95, 1), (std::vector<int>{0}));       // strictly above
  EXPECT_EQ(decode::commit_dynamic(c, 0.99, 0), (std::vector<int>{0}));       // floor at least 1
}

TEST(BlockCommitRules, DispatchFollowsTheOptions) {
  const std::vector<double> c{0.2, 0.9, 0.5, 0.7};
  BlockDecoderOptions o;
  o.threshold = 0.6;
  o.commit = BlockCommit::kThreshold;
  EXPECT_EQ(decode::select_commits(o, c, 1), (std::vector<int>{1, 3}));
  o.commit = BlockCommit::kTopN;
  EXPECT_EQ(decode::select_commits(o, c, 3), (std::vector<int>{1, 3, 2}));
  o.commit = BlockCommit::kDynamic;
  EXPECT_EQ(decode::select_commits(o, c, 3), (std::vector<int>{1, 3, 2}));
  o.commit = BlockCommit::kFactor;
  o.factor = 1.0;  // bounds 0.5, 0.667: 0.9 and 0.7 pass, 0.5 fails the 0.75
  EXPECT_EQ(decode::select_commits(o, c, 1), (std::vector<int>{1, 3}));
}

// ---- cache windows ------------------------------------------------------------------

TEST(BlockCacheWindows, PerPolicy) {
  const int start = 8, end = 12, L = 20;
  CachedQuery full = decode::block_step_query(BlockCache::kDual, true, start, end, L, 4);
  EXPECT_EQ(std::make_pair(full.query_begin, full.query_end), std::make_pair(0, L));
  EXPECT_TRUE(full.store_kv);
  EXPECT_TRUE(full.cached_spans.empty());
  CachedQuery p = decode::block_step_query(BlockCache::kPrefix, false, start, end, L, 4);
  EXPECT_EQ(std::make_pair(p.query_begin, p.query_end), std::make_pair(7, L));
  EXPECT_EQ(p.cached_spans, (Spans{{0, 7}}));
  EXPECT_FALSE(p.store_kv);
  CachedQuery d = decode::block_step_query(BlockCache::kDual, false, start, end, L, 4);
  EXPECT_EQ(std::make_pair(d.query_begin, d.query_end), std::make_pair(7, end));
  EXPECT_EQ(d.cached_spans, (Spans{{0, 7}, {end, L}}));
  EXPECT_TRUE(d.store_kv);
  CachedQuery w = decode::block_step_query(BlockCache::kWindow, false, start, end, L, 4);
  EXPECT_EQ(std::make_pair(w.query_begin, w.query_end), std::make_pair(4, 16));
  EXPECT_EQ(w.cached_spans, (Spans{{0, 4}, {16, L}}));
  EXPECT_TRUE(w.store_kv);
  // Clamped at both canvas ends; a block at slot 0 has no row before it.
  CachedQuery c = decode::block_step_query(BlockCache::kWindow, false, 0, 4, 6, 8);
  EXPECT_EQ(std::make_pair(c.query_begin, c.query_end), std::make_pair(0, 6));
  EXPECT_TRUE(c.cached_spans.empty());
}

TEST(BlockCacheWindows, DelayedAndPeriodicRefresh) {
  const int L = 40;
  // Block [8, 16) whose masks and last commits span [11, 14): W = 2 widens that range.
  CachedQuery d = decode::delayed_step_query(11, 14, L, 2);
  EXPECT_EQ(std::make_pair(d.query_begin, d.query_end), std::make_pair(9, 16));
  EXPECT_EQ(d.cached_spans, (Spans{{0, 9}, {16, L}}));
  EXPECT_TRUE(d.store_kv);
  // W = 0 still recomputes the row before the range (a shifted family scores slot 11 from row 10).
  CachedQuery z = decode::delayed_step_query(11, 14, L, 0);
  EXPECT_EQ(std::make_pair(z.query_begin, z.query_end), std::make_pair(10, 14));
  EXPECT_EQ(z.cached_spans, (Spans{{0, 10}, {14, L}}));
  CachedQuery c = decode::delayed_step_query(1, 39, L, 3);  // clamped at both ends
  EXPECT_EQ(std::make_pair(c.query_begin, c.query_end), std::make_pair(0, L));
  EXPECT_TRUE(c.cached_spans.empty());
  // Before delayed_step_query narrows it (the block's first call aside), kDelayed is kWindow.
  CachedQuery w = decode::block_step_query(BlockCache::kDelayed, false, 8, 16, L, 2);
  EXPECT_EQ(std::make_pair(w.query_begin, w.query_end), std::make_pair(6, 18));
  // A periodic refresh is a full call whatever the policy.
  for (BlockCache p : {BlockCache::kPrefix, BlockCache::kDual, BlockCache::kWindow, BlockCache::kDelayed}) {
    CachedQuery f = decode::block_step_query(p, true, 8, 16, L, 2);
    EXPECT_EQ(std::make_pair(f.query_begin, f.query_end), std::make_pair(0, L));
    EXPECT_TRUE(f.store_kv && f.cached_spans.empty());
  }
}

// ---- infill templates ---------------------------------------------------------------

TEST(InfillTemplate, HolesEscapesAndErrors) {
  const auto s = parse_infill_template("def add(a, b):\\n{mask:12}\\nprint({{1: 2}[1])");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].text, "def add(a, b):\n");
  EXPECT_EQ(s[1].masks, 12);
  EXPECT_EQ(s[2].text, "\nprint({1: 2}[1])");
  const auto two = parse_infill_template("{mask:1}{mask:2}x\\\\n");
  ASSERT_EQ(two.size(), 3u);
  EXPECT_EQ(two[0].masks, 1);
  EXPECT_EQ(two[1].masks, 2);
  EXPECT_EQ(two[2].text, "x\\n");  // "\\" is one backslash, then a plain 'n'
  EXPECT_THROW(parse_infill_template("a {b}"), Error);
  EXPECT_THROW(parse_infill_template("{mask:0}"), Error);
  EXPECT_THROW(parse_infill_template("{mask:3"), Error);
  EXPECT_THROW(parse_infill_template("{mask:}"), Error);
}

// ---- the decoder on recording fakes -------------------------------------------------

// Serves rows from `fn(canvas, slot)` through score and score_cached and records each
// call (cached: window, spans, write flag; full: the whole canvas as the window).
struct RecordingSource {
  struct Call {
    bool cached = false;
    int begin = 0, end = 0;
    Spans spans;
    bool store = false;
    std::vector<int32_t> slots, canvas;
  };
  std::function<std::vector<float>(const std::vector<int32_t>& canvas, int slot)> fn;
  std::vector<Call> calls;
  bool with_cache = true;

  LogitSource source() {
    LogitSource src;
    src.vocab = kV;
    src.score = [this](const std::vector<std::vector<int32_t>>& cv, const std::vector<int32_t>& sl,
                       std::vector<float>& out) {
      calls.push_back({false, 0, int(cv[0].size()), {}, false, sl, cv[0]});
      out.clear();
      for (int32_t s : sl) append(out, cv[0], s);
    };
    if (with_cache)
      src.score_cached = [this](const std::vector<int32_t>& canvas, const CachedQuery& q, std::vector<float>& out) {
        calls.push_back({true, q.query_begin, q.query_end, q.cached_spans, q.store_kv, q.slots, canvas});
        out.clear();
        for (int32_t s : q.slots) append(out, canvas, s);
      };
    return src;
  }
  void append(std::vector<float>& out, const std::vector<int32_t>& canvas, int slot) const {
    const std::vector<float> r = fn(canvas, slot);
    out.insert(out.end(), r.begin(), r.end());
  }
};

// Slot s predicts 1 + s % 5 (never the mask or EOS) with confidence falling along each
// group of 8 slots; independent of the canvas, so every cache policy reaches the same canvas.
std::vector<float> falling_row(const std::vector<int32_t>&, int slot) {
  return peaked_row(kV, 1 + slot % 5, 0.85 - 0.05 * (slot % 8));
}

BlockDecoderOptions base_opts() {
  BlockDecoderOptions o;
  o.mask_id = kMask;
  o.block_length = 4;
  o.cache = BlockCache::kNone;
  return o;
}

const std::vector<int32_t> kPrompt{1, 2, 3, 4};

TEST(BlockDecoder, TopNWithoutCacheEqualsLladaGenerateOnCraftedLogits) {
  // Canvas-dependent logits, so a wrong canvas at any call changes the trajectory.
  auto fn = [](const std::vector<int32_t>& canvas, int slot) {
    std::vector<float> r(static_cast<size_t>(kV));
    for (int v = 0; v < kV - 1; ++v)
      r[size_t(v)] = float(std::sin(1.3 * slot + 0.7 * v + 0.11 * canvas[size_t((slot * 5 + v) % canvas.size())]));
    r[size_t(kMask)] = -1;
    return r;
  };
  for (auto [gen, block, steps] : {std::tuple{12, 4, 6}, {12, 12, 12}, {16, 8, 4}}) {
    testing::FakeSource ref;
    ref.vocab = kV;
    ref.fn = [&](const std::vector<int32_t>& c, int, int s) { return fn(c, s); };
    LladaGenerateOptions lo;
    lo.gen_length = gen;
    lo.block_length = block;
    lo.steps = steps;
    lo.mask_id = kMask;
    const auto want = llada_generate(ref.source(), kPrompt, lo);
    RecordingSource ours;
    ours.fn = fn;
    BlockDecoderOptions o = base_opts();
    o.gen_length = gen;
    o.block_length = block;
    o.steps = steps;
    o.commit = BlockCommit::kTopN;
    const BlockDecodeResult r = block_decode(ours.source(), kPrompt, o);
    EXPECT_EQ(r.canvas, want) << gen << "/" << block << "/" << steps;
    EXPECT_EQ(r.forwards, steps);
    ASSERT_EQ(ours.calls.size(), ref.slots.size());
    for (size_t i = 0; i < ours.calls.size(); ++i) EXPECT_EQ(ours.calls[i].slots, ref.slots[i]) << "call " << i;
  }
}

TEST(BlockDecoder, ThresholdZeroCommitsABlockPerForwardAndOneCommitsOnePerForward) {
  for (BlockCache cache : {BlockCache::kNone, BlockCache::kPrefix, BlockCache::kDual, BlockCache::kWindow,
                           BlockCache::kDelayed}) {
    for (bool dynamic : {false, true}) {
      RecordingSource f;
      f.fn = falling_row;
      BlockDecoderOptions o = base_opts();
      o.cache = cache;
      (dynamic ? o.max_tokens : o.gen_length) = 16;
      o.threshold = 0.0;
      BlockDecodeResult r = block_decode(f.source(), kPrompt, o);
      EXPECT_EQ(r.forwards, 4) << int(cache) << " dynamic " << dynamic;  // 4 blocks of 4
      EXPECT_EQ(r.generated, 16);
      o.threshold = 1.0;  // peaked rows have p < 1: only the top-1 fallback commits
      r = block_decode(f.source(), kPrompt, o);
      EXPECT_EQ(r.forwards, 16) << int(cache) << " dynamic " << dynamic;
      EXPECT_EQ(r.generated, 16);
    }
  }
}

TEST(BlockDecoder, EosStopCutsTheAnswerAndSavesForwards) {
  const int P = int(kPrompt.size());
  // EOS at P+3 with p 0.99; every other slot below the 0.9 threshold, falling with the
  // slot (0.5, 0.49, ...) so the top-1 fallback fills them left to right.
  auto fn = [P](const std::vector<int32_t>&, int slot) {
    return slot == P + 3 ? peaked_row(kV, kEos, 0.99) : peaked_row(kV, 1 + slot % 5, 0.5 - 0.005 * (slot - P));
  };
  for (BlockCache cache : {BlockCache::kNone, BlockCache::kDual}) {
    RecordingSource f;
    f.fn = fn;
    BlockDecoderOptions o = base_opts();
    o.cache = cache;
    o.block_length = 8;
    o.max_tokens = 64;
    o.end_ids = {kEos};
    std::vector<std::vector<int32_t>> committed;
    const BlockDecodeResult r =
        block_decode(f.source(), kPrompt, o, [&](const StepEvent& e) { committed.push_back(e.committed); });
    EXPECT_TRUE(r.ended);
    EXPECT_EQ(r.generated, 3);
    EXPECT_EQ(r.canvas, (std::vector<int32_t>{1, 2, 3, 4, 1 + P % 5, 1 + (P + 1) % 5, 1 + (P + 2) % 5, kEos}));
    // EOS first, then P, P+1, P+2 one per forward.
    EXPECT_EQ(r.forwards, 4);
    ASSERT_EQ(committed.size(), 4u);
    EXPECT_EQ(committed[0], (std::vector<int32_t>{P + 3}));
    EXPECT_EQ(committed[3], (std::vector<int32_t>{P + 2}));
    // Dynamic length: the forward never saw more than the prompt and the active block.
    for (const auto& c : f.calls) EXPECT_EQ(c.canvas.size(), size_t(P + 8));
  }
  // Without end ids the same source decodes all 64 slots (EOS included).
  RecordingSource f;
  f.fn = fn;
  BlockDecoderOptions o = base_opts();
  o.block_length = 8;
  o.max_tokens = 64;
  const BlockDecodeResult r = block_decode(f.source(), kPrompt, o);
  EXPECT_FALSE(r.ended);
  EXPECT_EQ(r.generated, 64);
  EXPECT_GT(r.forwards, 4 * 8);
}

TEST(BlockDecoder, EosBehindAMaskDoesNotStop) {
  // EOS commits first at P+1 but slot P is still masked: decoding continues until P is
  // filled, then stops at once (mid-block) with a 1-token answer.
  const int P = int(kPrompt.size());
  RecordingSource f;
  f.fn = [P](const std::vector<int32_t>&, int slot) {
    if (slot == P + 1) return peaked_row(kV, kEos, 0.99);
    return peaked_row(kV, 2, slot == P ? 0.2 : 0.6 - 0.01 * (slot - P));
  };
  BlockDecoderOptions o = base_opts();
  o.block_length = 8;
  o.max_tokens = 16;
  o.end_ids = {kEos};
  const BlockDecodeResult r = block_decode(f.source(), kPrompt, o);
  // EOS, then P+2..P+7 (0.58 falling), then P.
  EXPECT_EQ(r.forwards, 8);
  EXPECT_EQ(r.generated, 1);
  EXPECT_EQ(r.canvas.size(), size_t(P + 2));
}

TEST(BlockDecoder, CacheWindowsPerPolicyOnAFixedCanvas) {
  // P = 4, gen 8, block 4: canvas length 12, blocks [4, 8) and [8, 12); one commit per call.
  const int L = 12;
  std::vector<int32_t> want;
  for (BlockCache cache : {BlockCache::kNone, BlockCache::kPrefix, BlockCache::kDual, BlockCache::kWindow,
                           BlockCache::kDelayed}) {
    RecordingSource f;
    f.fn = falling_row;
    BlockDecoderOptions o = base_opts();
    o.cache = cache;
    o.gen_length = 8;
    o.threshold = 1.0;
    o.refresh_window = 2;
    const BlockDecodeResult r = block_decode(f.source(), kPrompt, o);
    ASSERT_EQ(f.calls.size(), 8u);
    if (want.empty()) want = r.canvas;
    EXPECT_EQ(r.canvas, want) << int(cache);  // canvas-independent rows: same result
    for (size_t i = 0; i < 8; ++i) {
      const auto& c = f.calls[i];
      const int start = i < 4 ? 4 : 8, end = start + 4;
      EXPECT_EQ(int(c.slots.size()), 4 - int(i % 4));
      for (int32_t s : c.slots) EXPECT_TRUE(s >= start && s < end);
      if (cache == BlockCache::kNone) {
        EXPECT_FALSE(c.cached);
        continue;
      }
      ASSERT_TRUE(c.cached);
      if (i % 4 == 0) {  // block start: full forward that fills the cache
        EXPECT_EQ(std::make_pair(c.begin, c.end), std::make_pair(0, L));
        EXPECT_TRUE(c.store);
        continue;
      }
      if (cache == BlockCache::kPrefix) {
        EXPECT_EQ(std::make_pair(c.begin, c.end), std::make_pair(start - 1, L));
        EXPECT_EQ(c.spans, (Spans{{0, start - 1}}));
        EXPECT_FALSE(c.store);
      } else if (cache == BlockCache::kDelayed) {
        // Falling confidences commit left to right: the masks and the last commit start
        // at start + k - 1 in block step k, and W = 2 rows before that are refreshed.
        const int k = int(i % 4);
        EXPECT_EQ(std::make_pair(c.begin, c.end), std::make_pair(start + k - 1 - 2, std::min(end + 2, L)));
        EXPECT_TRUE(c.store);
      } else if (cache == BlockCache::kDual) {
        EXPECT_EQ(std::make_pair(c.begin, c.end), std::make_pair(start - 1, end));
        Spans spans{{0, start - 1}};
        if (end < L) spans.emplace_back(end, L);
        EXPECT_EQ(c.spans, spans);
        EXPECT_TRUE(c.store);
      } else {
        EXPECT_EQ(std::make_pair(c.begin, c.end), std::make_pair(start - 2, std::min(end + 2, L)));
        EXPECT_TRUE(c.store);
      }
    }
  }
  for (int s = 4; s < L; ++s) EXPECT_EQ(want[size_t(s)], 1 + s % 5);
}

TEST(BlockDecoder, DynamicLengthKeepsTheCacheWhenTheCanvasGrows) {
  // P = 4, max_tokens 12, block 4: the canvas grows 8 -> 12 -> 16; one commit per call.
  for (BlockCache cache : {BlockCache::kPrefix, BlockCache::kDual, BlockCache::kWindow, BlockCache::kDelayed}) {
    RecordingSource f;
    f.fn = falling_row;
    BlockDecoderOptions o = base_opts();
    o.cache = cache;
    o.max_tokens = 12;
    o.threshold = 1.0;
    o.refresh_window = 2;
    const BlockDecodeResult r = block_decode(f.source(), kPrompt, o);
    ASSERT_EQ(f.calls.size(), 12u);
    EXPECT_EQ(r.canvas.size(), 16u);
    // Only the first block opens with a full forward; later blocks recompute the
    // finished block (one row or the window before it) and the new one, read the rest.
    EXPECT_EQ(std::make_pair(f.calls[0].begin, f.calls[0].end), std::make_pair(0, 8));
    EXPECT_TRUE(f.calls[0].spans.empty());
    const int lead = cache == BlockCache::kWindow || cache == BlockCache::kDelayed ? 2 : 1;
    for (int b = 1; b < 3; ++b) {
      const auto& c = f.calls[size_t(4 * b)];
      const int prev_start = 4 * b, L = 8 + 4 * b;
      ASSERT_TRUE(c.cached);
      EXPECT_EQ(int(c.canvas.size()), L);
      EXPECT_EQ(std::make_pair(c.begin, c.end), std::make_pair(prev_start - lead, L)) << int(cache) << " block " << b;
      EXPECT_EQ(c.spans, (Spans{{0, prev_start - lead}}));
      EXPECT_TRUE(c.store);
    }
  }
}

TEST(BlockDecoder, InfillFillsOnlyTheHolesBlockByBlock) {
  const std::vector<int32_t> canvas{1, 2, kMask, kMask, kMask, 3, 4, kMask, kMask, 5};
  for (BlockCache cache : {BlockCache::kNone, BlockCache::kPrefix, BlockCache::kDual, BlockCache::kWindow,
                           BlockCache::kDelayed}) {
    RecordingSource f;
    f.fn = falling_row;
    BlockDecoderOptions o = base_opts();
    o.cache = cache;
    o.block_length = 2;  // holes [2, 5) -> [2, 4), [4, 5); [7, 9)
    o.threshold = 0.0;   // one forward per block
    o.end_ids = {kEos};  // ignored: infill never stops early
    const BlockDecodeResult r = block_infill(f.source(), canvas, o);
    EXPECT_EQ(r.forwards, 3) << int(cache);
    EXPECT_EQ(r.generated, 5);
    ASSERT_EQ(r.canvas.size(), canvas.size());
    for (size_t s = 0; s < canvas.size(); ++s)
      EXPECT_EQ(r.canvas[s], canvas[s] == kMask ? 1 + int(s) % 5 : canvas[s]) << "slot " << s;
    ASSERT_EQ(f.calls.size(), 3u);
    EXPECT_EQ(f.calls[0].slots, (std::vector<int32_t>{2, 3}));
    EXPECT_EQ(f.calls[1].slots, (std::vector<int32_t>{4}));
    EXPECT_EQ(f.calls[2].slots, (std::vector<int32_t>{7, 8}));
    for (const auto& c : f.calls) EXPECT_EQ(c.canvas.size(), canvas.size());  // the canvas never grows
  }
}

TEST(BlockDecoder, CachedStepsOfAnInfillHoleUseTheTextAfterIt) {
  // Hole [2, 6) with block 4 and one commit per call: dual recomputes [1, 6) and reads
  // the text after the hole, [6, 8), from the cache.
  const std::vector<int32_t> canvas{1, 2, kMask, kMask, kMask, kMask, 3, 4};
  RecordingSource f;
  f.fn = falling_row;
  BlockDecoderOptions o = base_opts();
  o.cache = BlockCache::kDual;
  o.threshold = 1.0;
  block_infill(f.source(), canvas, o);
  ASSERT_EQ(f.calls.size(), 4u);
  EXPECT_EQ(std::make_pair(f.calls[1].begin, f.calls[1].end), std::make_pair(1, 6));
  EXPECT_EQ(f.calls[1].spans, (Spans{{0, 1}, {6, 8}}));
}

TEST(BlockDecoder, SeededSamplingIsReproducibleAndNeverCommitsTheMask) {
  // The mask id has the largest logit everywhere: argmax and draws must skip it.
  auto fn = [](const std::vector<int32_t>&, int slot) {
    std::vector<float> r(static_cast<size_t>(kV));
    for (int v = 0; v < kV; ++v) r[size_t(v)] = float((v * 3 + slot) % 5) * 0.5f;
    r[size_t(kMask)] = 10;
    return r;
  };
  BlockDecoderOptions o = base_opts();
  o.gen_length = 16;
  o.temperature = 1.0;
  o.top_k = 4;
  o.seed = 42;
  RecordingSource a, b, c;
  a.fn = b.fn = c.fn = fn;
  const auto ra = block_decode(a.source(), kPrompt, o);
  const auto rb = block_decode(b.source(), kPrompt, o);
  EXPECT_EQ(ra.canvas, rb.canvas);
  for (int32_t t : ra.canvas) EXPECT_NE(t, kMask);
  o.seed = 43;
  const auto rc = block_decode(c.source(), kPrompt, o);
  EXPECT_NE(ra.canvas, rc.canvas);  // 16 draws over 4 tokens: equal by chance with p ~ 4^-16
  o.temperature = 0;
  RecordingSource d;
  d.fn = fn;
  for (int32_t t : block_decode(d.source(), kPrompt, o).canvas) EXPECT_NE(t, kMask);
}

TEST(BlockDecoder, StepEventsListEveryCommittedSlotOnce) {
  RecordingSource f;
  f.fn = falling_row;
  BlockDecoderOptions o = base_opts();
  o.max_tokens = 10;  // blocks of 4, 4, 2
  o.threshold = 0.7;
  std::vector<int32_t> seen;
  const auto r = block_decode(f.source(), kPrompt, o, [&](const StepEvent& e) {
    EXPECT_EQ(e.prompt_length, 4);
    EXPECT_EQ(e.mask_id, kMask);
    for (int32_t s : e.committed) EXPECT_NE((*e.canvas)[size_t(s)], kMask);
    seen.insert(seen.end(), e.committed.begin(), e.committed.end());
  });
  std::sort(seen.begin(), seen.end());
  std::vector<int32_t> all;
  for (int s = 4; s < 14; ++s) all.push_back(s);
  EXPECT_EQ(seen, all);
  EXPECT_EQ(r.canvas.size(), 14u);
}

TEST(BlockDecoder, RejectsBadOptions) {
  RecordingSource f;
  f.fn = falling_row;
  BlockDecoderOptions o = base_opts();
  EXPECT_THROW(block_decode(f.source(), kPrompt, o), Error);  // no length
  o.gen_length = 10;  // not a multiple of the block
  EXPECT_THROW(block_decode(f.source(), kPrompt, o), Error);
  o.gen_length = 8;
  o.steps = 3;  // not a multiple of the 2 blocks
  EXPECT_THROW(block_decode(f.source(), kPrompt, o), Error);
  o.steps = 0;
  o.temperature = -1;
  EXPECT_THROW(block_decode(f.source(), kPrompt, o), Error);
  o.temperature = 0;
  o.end_ids = {kV};
  EXPECT_THROW(block_decode(f.source(), kPrompt, o), Error);
  o.end_ids = {};
  RecordingSource nocache;
  nocache.with_cache = false;
  nocache.fn = falling_row;
  o.cache = BlockCache::kDual;
  EXPECT_THROW(block_decode(nocache.source(), kPrompt, o), Error);
  EXPECT_THROW(block_infill(f.source(), {1, 2, 3}, o), Error);  // no hole
}

// Replays the recorded calls against a simulated cache: every cached position a call
// reads must have been stored, by an earlier call, for the token it holds now. Returns
// the rows recomputed over all calls.
int replay_cache(const std::vector<RecordingSource::Call>& calls) {
  std::vector<int32_t> stored;  // token each position was stored for, -1 = none
  int rows = 0;
  for (size_t i = 0; i < calls.size(); ++i) {
    const auto& c = calls[i];
    EXPECT_TRUE(c.cached);
    if (stored.size() != c.canvas.size()) stored.resize(c.canvas.size(), -1);  // dynamic length grew it
    for (auto [lo, hi] : c.spans)
      for (int p = lo; p < hi; ++p)
        EXPECT_EQ(stored[size_t(p)], c.canvas[size_t(p)]) << "call " << i << " reads position " << p;
    if (c.store)
      for (int p = c.begin; p < c.end; ++p) stored[size_t(p)] = c.canvas[size_t(p)];
    rows += c.end - c.begin;
  }
  return rows;
}

TEST(BlockDecoder, DelayedReadsOnlyRowsStoredWithTheirTokenAndRecomputesFewerRows) {
  // Confidences scattered over each block (slot order 0, 5, 2, 7, 4, 1, 6, 3 of 8), so
  // commits do not run left to right; canvas-independent, so every policy decodes alike.
  auto scattered = [](const std::vector<int32_t>&, int slot) {
    return peaked_row(kV, 1 + slot % 5, 0.3 + 0.07 * double((slot * 5) % 8));
  };
  const std::vector<int32_t> holes{1, 2, kMask, kMask, kMask, kMask, kMask, kMask, 3, 4, kMask, kMask, kMask, 5};
  for (int layout = 0; layout < 3; ++layout)  // fixed canvas, dynamic length, infill
    for (double threshold : {1.0, 0.6})       // one commit per call; several in some calls
      for (int every : {0, 3}) {
        std::vector<int32_t> want;
        std::map<BlockCache, int> rows;
        for (BlockCache cache : {BlockCache::kDual, BlockCache::kWindow, BlockCache::kDelayed}) {
          RecordingSource f;
          f.fn = scattered;
          BlockDecoderOptions o = base_opts();
          o.cache = cache;
          o.block_length = 8;
          o.threshold = threshold;
          o.refresh_window = 1;
          o.refresh_every = every;
          (layout == 0 ? o.gen_length : o.max_tokens) = 24;
          const BlockDecodeResult r = layout == 2 ? block_infill(f.source(), holes, o) : block_decode(f.source(), kPrompt, o);
          if (want.empty()) want = r.canvas;
          EXPECT_EQ(r.canvas, want) << int(cache);
          rows[cache] = replay_cache(f.calls);
        }
        SCOPED_TRACE(::testing::Message() << "layout " << layout << " threshold " << threshold << " every " << every);
        EXPECT_LT(rows[BlockCache::kDelayed], rows[BlockCache::kWindow]);
      }
}

TEST(BlockDecoder, RefreshEveryMakesEveryNthBlockStepAFullCall) {
  RecordingSource f;
  f.fn = falling_row;
  BlockDecoderOptions o = base_opts();
  o.cache = BlockCache::kDual;
  o.gen_length = 8;
  o.threshold = 1.0;  // one commit per call: 4 calls per block
  o.refresh_every = 2;
  block_decode(f.source(), kPrompt, o);
  ASSERT_EQ(f.calls.size(), 8u);
  for (size_t i = 0; i < f.calls.size(); ++i) {
    const bool full = i % 2 == 0;  // block steps 0 and 2 of both blocks
    EXPECT_EQ(f.calls[i].begin == 0 && f.calls[i].end == 12, full) << "call " << i;
    EXPECT_EQ(f.calls[i].spans.empty(), full) << "call " << i;
  }
  o.refresh_every = -1;
  EXPECT_THROW(block_decode(f.source(), kPrompt, o), Error);
}

// ---- on the tiny fixture models -----------------------------------------------------

std::unique_ptr<Model> tiny(const std::string& fam) { return load_model(std::string(UNMASK_TEST_DATA) + "/" + fam); }

std::vector<int32_t> fixture_prompt(const std::string& fam, const std::string& key) {
  std::ifstream f(std::string(UNMASK_TEST_DATA) + "/" + fam + "/prompts.json");
  return nlohmann::json::parse(f).at(key).at("ids").get<std::vector<int32_t>>();
}

class BlockDecoderOnModel : public ::testing::TestWithParam<const char*> {};

TEST_P(BlockDecoderOnModel, TopNWithoutCacheEqualsLladaGenerate) {
  auto m = tiny(GetParam());
  const LogitSource src = model_logit_source(*m);
  for (const char* key : {"chat", "code"}) {
    const std::vector<int32_t> prompt = fixture_prompt(GetParam(), key);
    for (auto [gen, block, steps] : {std::tuple{32, 8, 16}, {32, 32, 32}}) {
      LladaGenerateOptions lo;
      lo.gen_length = gen;
      lo.block_length = block;
      lo.steps = steps;
      lo.mask_id = m->config.special.mask;
      const auto want = llada_generate(src, prompt, lo);
      // The equality holds when the reference never commits the mask id (ours never does).
      ASSERT_EQ(std::count(want.begin(), want.end(), lo.mask_id), 0) << "fixture precondition";
      BlockDecoderOptions o;
      o.gen_length = gen;
      o.block_length = block;
      o.steps = steps;
      o.commit = BlockCommit::kTopN;
      o.cache = BlockCache::kNone;
      o.mask_id = lo.mask_id;
      const BlockDecodeResult r = block_decode(src, prompt, o);
      EXPECT_EQ(r.canvas, want) << GetParam() << " " << key << " " << gen << "/" << block << "/" << steps;
      EXPECT_EQ(r.forwards, steps);
    }
  }
}

TEST_P(BlockDecoderOnModel, EveryCachePolicyDecodesAndInfillsValidCanvases) {
  auto m = tiny(GetParam());
  const LogitSource src = model_logit_source(*m);
  const int32_t mask = m->config.special.mask;
  const std::vector<int32_t> prompt = fixture_prompt(GetParam(), "chat");
  std::vector<int32_t> hole(prompt);
  hole.insert(hole.begin() + 6, 10, mask);  // 10 masks inside the prompt text
  for (BlockCache cache : {BlockCache::kNone, BlockCache::kPrefix, BlockCache::kDual, BlockCache::kWindow,
                           BlockCache::kDelayed}) {
    BlockDecoderOptions o;
    o.mask_id = mask;
    o.cache = cache;
    o.block_length = 8;
    o.max_tokens = 24;
    o.refresh_window = 4;
    const BlockDecodeResult r = block_decode(src, prompt, o);
    EXPECT_EQ(r.canvas.size(), prompt.size() + 24);  // no end ids: the full length
    EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), r.canvas.begin()));
    for (int32_t t : r.canvas) EXPECT_TRUE(t >= 0 && t < m->config.vocab && t != mask);
    EXPECT_GE(r.forwards, 3);  // at least one per block
    const BlockDecodeResult f = block_infill(src, hole, o);
    ASSERT_EQ(f.canvas.size(), hole.size());
    for (size_t s = 0; s < hole.size(); ++s) {
      EXPECT_NE(f.canvas[s], mask);
      if (hole[s] != mask) {
        EXPECT_EQ(f.canvas[s], hole[s]) << "slot " << s;
      }
    }
  }
}

TEST_P(BlockDecoderOnModel, CachesThatRecomputeEveryRowEqualNoCache) {
  // window / delayed with W >= the canvas, and dual with a full refresh every step,
  // recompute every row in every call: the outputs are those of no cache, bit for bit.
  auto m = tiny(GetParam());
  const std::vector<int32_t> prompt = fixture_prompt(GetParam(), "code");
  std::vector<int32_t> hole(prompt);  // two holes: 7 masks after slot 4, 5 before the last 3 slots
  for (auto [at, n] : {std::pair{4, 7}, {int(prompt.size()) + 7 - 3, 5}})
    hole.insert(hole.begin() + at, size_t(n), m->config.special.mask);
  const LogitSource src = model_logit_source(*m);
  const int32_t mask = m->config.special.mask;
  for (int layout = 0; layout < 3; ++layout) {  // fixed canvas, dynamic length, infill
    BlockDecoderOptions o;
    o.mask_id = mask;
    o.block_length = 8;
    o.threshold = 0.3;  // several commits in some steps
    (layout == 0 ? o.gen_length : o.max_tokens) = 24;
    auto run = [&](BlockCache cache, int window, int every) {
      o.cache = cache;
      o.refresh_window = window;
      o.refresh_every = every;
      return layout == 2 ? block_infill(src, hole, o).canvas : block_decode(src, prompt, o).canvas;
    };
    const std::vector<int32_t> want = run(BlockCache::kNone, 0, 0);
    const int all = int(hole.size() + prompt.size()) + 24;
    EXPECT_EQ(run(BlockCache::kWindow, all, 0), want) << "layout " << layout;
    EXPECT_EQ(run(BlockCache::kDelayed, all, 0), want) << "layout " << layout;
    EXPECT_EQ(run(BlockCache::kDual, 0, 1), want) << "layout " << layout;
  }
}

std::string family_name(const ::testing::TestParamInfo<const char*>& p) {
  return std::string(p.param) == "llada-tiny" ? "llada" : "dream";
}
INSTANTIATE_TEST_SUITE_P(TinyModels, BlockDecoderOnModel, ::testing::Values("llada-tiny", "dream-tiny"), family_name);

}  // namespace
}  // namespace unmask
