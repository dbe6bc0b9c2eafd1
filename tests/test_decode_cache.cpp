// Cached decoders (Fast-dLLM LLaDA prefix / dual cache, Fast-dLLM Dream block version)
// on a fake source that records every query, and model_logit_source's score_cached on
// the tiny fixture models.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "test_decode_util.h"
#include "test_util.h"
#include "unmask/decode.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask {
namespace {

using testing::peaked_row;

constexpr int kV = 8;
constexpr int32_t kMask = 7;
const std::vector<int32_t> kPrompt{1, 2, 3, 4};

// Serves rows from `fn(canvas, slot)` for both entry points and records each call:
// full calls (score) as an empty window, cached calls with their window, spans, write
// flag and slots.
struct CachedFake {
  struct Call {
    bool cached = false;
    int begin = 0, end = 0;
    std::vector<std::pair<int32_t, int32_t>> spans;
    bool store = false;
    std::vector<int32_t> slots;
    std::vector<int32_t> canvas;
  };
  std::function<std::vector<float>(const std::vector<int32_t>& canvas, int slot)> fn;
  std::vector<Call> calls;

  LogitSource source() {
    LogitSource src;
    src.vocab = kV;
    src.score = [this](const std::vector<std::vector<int32_t>>& cv, const std::vector<int32_t>& sl,
                       std::vector<float>& out) {
      calls.push_back({false, 0, int(cv[0].size()), {}, false, sl, cv[0]});
      out.clear();
      for (int32_t s : sl) append(out, cv[0], s);
    };
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

using Spans = std::vector<std::pair<int32_t, int32_t>>;

// Slot s predicts token 1 + s % 6 with a confidence that falls with s, so the
// leftmost masks commit first; independent of the canvas, so every cache policy
// must reach the same final canvas.
std::vector<float> falling_row(const std::vector<int32_t>&, int slot) {
  return peaked_row(kV, 1 + slot % 6, 0.95 - 0.05 * (slot % 8));
}

FastDllmLladaOptions fast_opts(CachePolicy cache, int gen, int block, int steps) {
  FastDllmLladaOptions o;
  o.gen_length = gen;
  o.block_length = block;
  o.steps = steps;
  o.mask_id = kMask;
  o.cache = cache;
  return o;
}

TEST(FastDllmLladaCache, PrefixQueriesBlockPlusSuffixOverCachedPrefix) {
  CachedFake f;
  f.fn = falling_row;
  // Canvas 4 + 8 = 12, blocks [4, 8) and [8, 12), 2 steps per block -> [2, 2] commits.
  const auto out = fast_dllm_llada_generate(f.source(), kPrompt, fast_opts(CachePolicy::kPrefix, 8, 4, 4));
  ASSERT_EQ(f.calls.size(), 4u);
  for (int b = 0; b < 2; ++b) {
    const int start = 4 + 4 * b;
    const auto& full = f.calls[size_t(2 * b)];
    EXPECT_TRUE(full.cached);
    EXPECT_EQ(full.begin, 0);
    EXPECT_EQ(full.end, 12);
    EXPECT_TRUE(full.spans.empty());
    EXPECT_TRUE(full.store) << "the block-start forward fills the cache";
    const auto& call = f.calls[size_t(2 * b + 1)];
    EXPECT_EQ(call.begin, start);
    EXPECT_EQ(call.end, 12) << "prefix cache recomputes the block and the whole suffix";
    EXPECT_EQ(call.spans, (Spans{{0, start}}));
    EXPECT_FALSE(call.store) << "upstream truncates the cache to the prefix and never writes it back";
    EXPECT_EQ(call.slots, (std::vector<int32_t>{start + 2, start + 3})) << "only the block's masked slots";
  }
  EXPECT_EQ(f.calls[0].slots, (std::vector<int32_t>{4, 5, 6, 7}));  // masked slots before the block end
  // Cache-independent logits: the uncached generate reaches the same canvas.
  CachedFake g;
  g.fn = falling_row;
  EXPECT_EQ(out, fast_dllm_llada_generate(g.source(), kPrompt, fast_opts(CachePolicy::kNone, 8, 4, 4)));
  for (const auto& c : g.calls) EXPECT_FALSE(c.cached) << "no cache: every call is a full score()";
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}));
}

TEST(FastDllmLladaCache, DualQueriesExactlyTheBlock) {
  CachedFake f;
  f.fn = falling_row;
  const auto out = fast_dllm_llada_generate(f.source(), kPrompt, fast_opts(CachePolicy::kDual, 8, 4, 4));
  ASSERT_EQ(f.calls.size(), 4u);
  const auto& b0 = f.calls[1];
  EXPECT_EQ(b0.begin, 4);
  EXPECT_EQ(b0.end, 8);
  EXPECT_EQ(b0.spans, (Spans{{0, 4}, {8, 12}})) << "prefix and the stale suffix come from the cache";
  EXPECT_TRUE(b0.store) << "upstream overwrites the block's cache rows in place";
  const auto& b1 = f.calls[3];
  EXPECT_EQ(b1.begin, 8);
  EXPECT_EQ(b1.end, 12);
  EXPECT_EQ(b1.spans, (Spans{{0, 8}})) << "the last block has no suffix";
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}));
}

TEST(FastDllmLladaCache, ExtraCachedCallAfterBlockFinishedByFullForward) {
  // Threshold 0.05: the block-start forward commits the whole block (all p >= 0.6);
  // upstream still makes one cached call (nothing left to score) before the next block.
  for (CachePolicy cache : {CachePolicy::kPrefix, CachePolicy::kDual}) {
    CachedFake f;
    f.fn = falling_row;
    FastDllmLladaOptions o = fast_opts(cache, 8, 4, 4);
    o.threshold = 0.05;
    std::vector<size_t> committed;
    fast_dllm_llada_generate(f.source(), kPrompt, o, [&](const StepEvent& e) { committed.push_back(e.committed.size()); });
    ASSERT_EQ(f.calls.size(), 4u);
    EXPECT_EQ(f.calls[0].end - f.calls[0].begin, 12);
    EXPECT_TRUE(f.calls[1].slots.empty());
    EXPECT_EQ(f.calls[2].end - f.calls[2].begin, 12);
    EXPECT_TRUE(f.calls[3].slots.empty());
    EXPECT_EQ(committed, (std::vector<size_t>{4, 0, 4, 0}));  // the fixtures' "8, 0, 8, 0" pattern
  }
}

TEST(FastDllmLladaCache, ScheduleOverrunAndStuckCallsThrow) {
  // One step per block: the full forward finishes the block, and the mandatory cached
  // call would index the schedule past its end (IndexError upstream).
  CachedFake f;
  f.fn = falling_row;
  EXPECT_THROW(fast_dllm_llada_generate(f.source(), kPrompt, fast_opts(CachePolicy::kPrefix, 8, 4, 2)), Error);
  // The argmax of slot 5 is the mask id: with a threshold, the cached call repeats forever upstream.
  CachedFake g;
  g.fn = [](const std::vector<int32_t>&, int slot) { return peaked_row(kV, slot == 5 ? kMask : 1, 0.9); };
  FastDllmLladaOptions o = fast_opts(CachePolicy::kDual, 8, 4, 4);
  o.threshold = 0.5;
  EXPECT_THROW(fast_dllm_llada_generate(g.source(), kPrompt, o), Error);
  // A source without a cache cannot run a cached policy.
  LogitSource plain = f.source();
  plain.score_cached = nullptr;
  EXPECT_THROW(fast_dllm_llada_generate(plain, kPrompt, fast_opts(CachePolicy::kDual, 8, 4, 4)), Error);
}

DreamBlockOptions dream_opts(CachePolicy cache, int gen, int block, int steps, DreamAlg alg) {
  DreamBlockOptions o;
  o.dream.max_new_tokens = gen;
  o.dream.steps = steps;
  o.dream.temperature = 0;
  o.dream.alg = alg;
  o.dream.mask_id = kMask;
  o.block_length = block;
  o.cache = cache;
  return o;
}

TEST(DreamBlockCache, WindowsSpansAndUnconditionalFirstSlot) {
  for (CachePolicy cache : {CachePolicy::kPrefix, CachePolicy::kDual}) {
    CachedFake f;
    // Block-start slots (4, 8) are barely confident: still committed by the full forward.
    f.fn = [](const std::vector<int32_t>&, int slot) {
      return peaked_row(kV, 1 + slot % 6, slot % 4 == 0 ? 0.2 : 0.95);
    };
    DreamBlockOptions o = dream_opts(cache, 8, 4, 4, DreamAlg::kConfidenceThreshold);
    o.dream.threshold = 0.9;
    const auto out = dream_block_generate(f.source(), kPrompt, o);
    ASSERT_EQ(f.calls.size(), 4u);  // per block: full forward, then one call commits the other 3
    for (int b = 0; b < 2; ++b) {
      const int start = 4 + 4 * b;
      const auto& full = f.calls[size_t(2 * b)];
      EXPECT_EQ(full.begin, 0);
      EXPECT_EQ(full.end, 12);
      EXPECT_TRUE(full.store);
      EXPECT_EQ(full.slots, (std::vector<int32_t>{start})) << "only the block's first slot is used";
      const auto& call = f.calls[size_t(2 * b + 1)];
      EXPECT_EQ(call.begin, start);
      EXPECT_EQ(call.end, cache == CachePolicy::kDual ? start + 4 : 12);
      Spans spans{{0, start}};
      if (cache == CachePolicy::kDual && b == 0) spans.emplace_back(8, 12);
      EXPECT_EQ(call.spans, spans);
      EXPECT_EQ(call.store, cache == CachePolicy::kDual);
      EXPECT_EQ(call.slots, (std::vector<int32_t>{start + 1, start + 2, start + 3}));
    }
    EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}));
  }
}

TEST(DreamBlockCache, EntropyLoopIndexStartsAtOneAndDropsTheLastCall) {
  // steps 8 over 2 blocks of 4: 4 steps per block, ts = linspace(1, 1e-3, 5) =
  // [1, .75025, .5005, .25075, .001]; the loop runs i = 1, 2, 3 (ts[0] unused) on the 3
  // masks the full forward left: int(3 (1 - .5005/.75025)) = int(0.9987) = 0, then
  // int(3 (1 - .25075/.5005)) = int(1.497) = 1, then all remaining (2) at i = 3.
  CachedFake f;
  f.fn = falling_row;
  std::vector<size_t> committed;
  dream_block_generate(f.source(), kPrompt, dream_opts(CachePolicy::kPrefix, 8, 4, 8, DreamAlg::kEntropy),
                       [&](const StepEvent& e) { committed.push_back(e.committed.size()); });
  EXPECT_EQ(committed, (std::vector<size_t>{1, 0, 1, 2, 1, 0, 1, 2}));
  // One step per block: the first cached call hits i == steps_per_block, its result is
  // dropped and the block ends with only its first slot committed.
  CachedFake g;
  g.fn = falling_row;
  const auto out = dream_block_generate(g.source(), kPrompt, dream_opts(CachePolicy::kDual, 8, 4, 2, DreamAlg::kEntropy));
  EXPECT_EQ(g.calls.size(), 4u);
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3, 4, 5, kMask, kMask, kMask, 3, kMask, kMask, kMask}));
}

TEST(DreamBlockCache, RejectsNoCacheAndBadLayout) {
  CachedFake f;
  f.fn = falling_row;
  EXPECT_THROW(dream_block_generate(f.source(), kPrompt, dream_opts(CachePolicy::kNone, 8, 4, 4, DreamAlg::kEntropy)),
               Error);
  EXPECT_THROW(dream_block_generate(f.source(), kPrompt, dream_opts(CachePolicy::kDual, 8, 3, 4, DreamAlg::kEntropy)),
               Error);  // 8 is not a multiple of 3
  EXPECT_THROW(dream_block_generate(f.source(), kPrompt, dream_opts(CachePolicy::kDual, 8, 4, 3, DreamAlg::kEntropy)),
               Error);  // 3 steps over 2 blocks
}

// ---- model_logit_source::score_cached on the tiny models --------------------------

std::unique_ptr<Model> tiny(const std::string& fam) { return load_model(std::string(UNMASK_TEST_DATA) + "/" + fam); }

std::vector<int32_t> test_canvas(const Model& m, int L) {
  std::vector<int32_t> c;
  for (int i = 0; i < L; ++i) c.push_back(i < L / 2 ? (i * 37 + 11) % 480 : m.config.special.mask);
  return c;
}

class ScoreCached : public ::testing::TestWithParam<const char*> {};

TEST_P(ScoreCached, WindowRowsFollowTheWindowShift) {
  auto m = tiny(GetParam());
  const int V = m->config.vocab, L = 30, bs = 16, be = 24;
  const std::vector<int32_t> x = test_canvas(*m, L);
  const std::vector<float> raw = test::full_forward_logits(*m, x);
  const LogitSource src = model_logit_source(*m);
  std::vector<float> out;
  CachedQuery fill{0, L, {}, true, {}};
  src.score_cached(x, fill, out);  // no slots, but the cache must be filled
  EXPECT_TRUE(out.empty());
  const std::vector<int32_t> slots{bs, bs + 1, be - 1};
  for (const CachedQuery& q : {CachedQuery{bs, L, {{0, bs}}, false, slots},
                               CachedQuery{bs, be, {{0, bs}, {be, L}}, true, slots}}) {
    src.score_cached(x, q, out);
    ASSERT_EQ(out.size(), slots.size() * size_t(V));
    for (size_t j = 0; j < slots.size(); ++j) {
      // Dream (shift 1): the window's first slot is scored by its own row, the others by
      // the row before; LLaDA (shift 0): always the slot's own row.
      const int s = slots[j], shift = m->config.logit_shift;
      const int row = s == bs ? s : s - shift;
      double worst = 0;
      for (int v = 0; v < V; ++v)
        worst = std::max(worst, double(std::fabs(out[j * size_t(V) + size_t(v)] - raw[size_t(row) * size_t(V) + size_t(v)])));
      // The cache holds this very canvas's K/V: only summation order differs (test_kv_cache.cpp's 2e-5).
      EXPECT_LT(worst, 2e-5) << GetParam() << " slot " << s;
    }
  }
}

TEST_P(ScoreCached, RejectsUnstoredSpansAndSlotsOutsideTheWindow) {
  auto m = tiny(GetParam());
  const int L = 20;
  const std::vector<int32_t> x = test_canvas(*m, L);
  const LogitSource src = model_logit_source(*m);
  std::vector<float> out;
  EXPECT_THROW(src.score_cached(x, CachedQuery{10, L, {{0, 10}}, false, {12}}, out), Error);  // nothing stored yet
  src.score_cached(x, CachedQuery{0, L, {}, true, {}}, out);
  EXPECT_NO_THROW(src.score_cached(x, CachedQuery{10, L, {{0, 10}}, false, {12}}, out));
  EXPECT_THROW(src.score_cached(x, CachedQuery{10, L, {{0, 10}}, false, {3}}, out), Error);    // slot before the window
  EXPECT_THROW(src.score_cached(x, CachedQuery{10, L, {{0, 12}}, false, {12}}, out), Error);   // span overlaps the rows
  // A shorter canvas resets the cache.
  const std::vector<int32_t> z = test_canvas(*m, L - 4);
  EXPECT_THROW(src.score_cached(z, CachedQuery{10, L - 4, {{0, 10}}, false, {12}}, out), Error);
}

TEST_P(ScoreCached, ALongerCanvasKeepsTheRowsWhoseTokenIsUnchanged) {
  auto m = tiny(GetParam());
  const int L = 20;
  const std::vector<int32_t> x = test_canvas(*m, L);      // tokens [0, 10), masks [10, 20)
  const std::vector<int32_t> y = test_canvas(*m, L + 4);  // tokens [0, 12), masks [12, 24)
  const LogitSource src = model_logit_source(*m);
  std::vector<float> out;
  src.score_cached(x, CachedQuery{0, L, {}, true, {}}, out);
  // Positions 10 and 11 turned from masks into tokens: their rows are dropped.
  EXPECT_THROW(src.score_cached(y, CachedQuery{12, L + 4, {{0, 12}}, false, {14}}, out), Error);
  src.score_cached(y, CachedQuery{10, L + 4, {{0, 10}}, false, {14, 20}}, out);
  // The kept rows are x's: the same call on a forward whose cache holds x's K/V.
  KvCache kv;
  kv.reset(m->config, L + 4);
  ForwardBatch fill;
  fill.tokens = x;
  for (int p = 0; p < L; ++p) fill.positions.push_back(p);
  fill.kv = {SequenceKv{&kv, {}, true}};
  ForwardOutput unused, want;
  forward(*m, fill, &unused);
  ForwardBatch q;
  for (int p = 10; p < L + 4; ++p) {
    q.tokens.push_back(y[size_t(p)]);
    q.positions.push_back(p);
  }
  q.logit_rows = {logit_row_for_slot(m->config, 14) - 10, logit_row_for_slot(m->config, 20) - 10};
  q.kv = {SequenceKv{&kv, {{0, 10}}, false}};
  forward(*m, q, &want);
  EXPECT_EQ(out, want.logits);  // same rows, same kernels: bit for bit
}

std::string family_name(const ::testing::TestParamInfo<const char*>& p) {
  return std::string(p.param) == "llada-tiny" ? "llada" : "dream";
}
INSTANTIATE_TEST_SUITE_P(TinyModels, ScoreCached, ::testing::Values("llada-tiny", "dream-tiny"), family_name);

// ---- against the llada-tiny manifest ------------------------------------------------

nlohmann::json manifest(const std::string& fam) {
  std::ifstream f(std::string(UNMASK_TEST_DATA) + "/" + fam + "/manifest.json");
  return nlohmann::json::parse(f);
}

std::vector<int32_t> prompt_ids(const std::string& fam, const std::string& ref) {
  std::ifstream f(std::string(UNMASK_TEST_DATA) + "/" + fam + "/prompts.json");
  const auto prompts = nlohmann::json::parse(f);
  return prompts.at(ref.substr(ref.find(':') + 1)).at("ids").get<std::vector<int32_t>>();
}

TEST(FastDllmLladaCacheOnModel, ScheduledDualAndPrefixRunsMatchTheManifestCalls) {
  // Every Fast-dLLM cached run without a threshold: the number of calls and each call's
  // fed length must equal model_input_shapes (full canvas at block starts, then the
  // block (dual) or block + suffix (prefix)), and the final canvas final_ids.
  auto m = tiny("llada-tiny");
  const auto man = manifest("llada-tiny");
  int checked = 0;
  for (const auto& [name, g] : man.at("generate").items()) {
    const std::string fn = g.at("function").get<std::string>();
    const bool dual = fn.ends_with("::generate_with_dual_cache"), prefix = fn.ends_with("::generate_with_prefix_cache");
    const auto& kw = g.at("kwargs");
    if (!(dual || prefix) || !kw.at("threshold").is_null()) continue;
    FastDllmLladaOptions o = fast_opts(dual ? CachePolicy::kDual : CachePolicy::kPrefix, kw.at("gen_length").get<int>(),
                                       kw.at("block_length").get<int>(), kw.at("steps").get<int>());
    o.mask_id = kw.at("mask_id").get<int32_t>();
    const LogitSource inner = model_logit_source(*m, LogitSourceOptions{.reference_precision = true});
    LogitSource src = inner;
    std::vector<std::vector<int>> shapes;
    src.score = [&](const auto& cv, const auto& sl, auto& out) {
      shapes.push_back({int(cv.size()), int(cv[0].size())});
      inner.score(cv, sl, out);
    };
    src.score_cached = [&](const auto& canvas, const CachedQuery& q, auto& out) {
      shapes.push_back({1, q.query_end - q.query_begin});
      inner.score_cached(canvas, q, out);
    };
    const auto out = fast_dllm_llada_generate(src, prompt_ids("llada-tiny", g.at("prompt").get<std::string>()), o);
    EXPECT_EQ(int(shapes.size()), g.at("n_model_calls").get<int>()) << name;
    EXPECT_EQ(shapes, g.at("model_input_shapes").get<std::vector<std::vector<int>>>()) << name;
    EXPECT_EQ(out, g.at("final_ids").get<std::vector<int32_t>>()) << name;
    ++checked;
  }
  EXPECT_GE(checked, 2) << "the manifest should hold scheduled prefix and dual runs";
}

}  // namespace
}  // namespace unmask
