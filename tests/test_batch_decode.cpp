// Batched canvases (unmask/batch_decode.h): rows computed the same whatever else is in
// the call (matmul kernels, whole forwards), and batched decoding equal to each canvas
// decoded alone by block_decode / block_infill — cache policies, greedy and seeded
// sampling, jobs joining, leaving and being cancelled mid-way, bad jobs.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "ops/cpu/matmul.h"
#include "test_util.h"
#include "unmask/batch_decode.h"
#include "unmask/decode.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask {
namespace {

// ---- row independence ---------------------------------------------------------------

TensorView weight_view(std::vector<uint8_t>& bytes, DType dtype, int64_t out, int64_t k, std::mt19937& gen) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  bytes.assign(size_t(out * k) * dtype_size(dtype), 0);
  for (int64_t i = 0; i < out * k; ++i) {
    const float v = normal(gen);
    if (dtype == DType::BF16) {
      const uint16_t h = f32_to_bf16(v);
      std::memcpy(bytes.data() + size_t(i) * 2, &h, 2);
    } else {
      std::memcpy(bytes.data() + size_t(i) * 4, &v, 4);
    }
  }
  TensorView w;
  w.data = bytes.data();
  w.dtype = dtype;
  w.ndim = 2;
  w.shape = {out, k, 0, 0};
  return w;
}

// Batching is exact only if a row of y = x W^T is computed the same way whichever rows
// surround it: the kernels' row blocking (R rows per micro-tile, rows split over
// threads, a different tile shape at the edge) must never change a row's summation
// order. Row r of a product over n rows must equal, bit for bit, the same row computed
// in a product over a different set of rows. Shapes: odd sizes, k past one k block
// (512 f32 / 1024 bf16) and out past one column block (128), so every blocking level
// and edge tile is crossed; n up to 40 moves rows between edge and full tiles and
// between the column-split and row-split thread plans.
TEST(BatchRows, MatmulRowsDoNotDependOnTheOtherRows) {
  std::mt19937 gen(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (ops::Isa isa : {ops::Isa::kScalar, ops::Isa::kAvx2, ops::Isa::kAvx512}) {
    if (!ops::isa_available(isa)) continue;
    for (DType dtype : {DType::F32, DType::BF16})
      for (auto [out, k] : {std::pair<int64_t, int64_t>{37, 67}, {261, 1100}, {9, 2053}}) {
        std::vector<uint8_t> bytes;
        const TensorView w = weight_view(bytes, dtype, out, k, gen);
        std::vector<float> bias(static_cast<size_t>(out));
        for (float& b : bias) b = normal(gen);
        const int64_t n = 40;
        std::vector<float> x(static_cast<size_t>(n * k));
        for (float& v : x) v = normal(gen);
        std::vector<float> all(static_cast<size_t>(n * out));
        ops::matmul_with_isa(isa, x.data(), n, w, bias.data(), all.data());
        // Sub-batches: each row alone, and windows of several sizes at odd offsets.
        for (auto [begin, len] : {std::pair<int64_t, int64_t>{0, 1}, {5, 1}, {39, 1}, {3, 7}, {13, 6}, {1, 23}, {17, 23}}) {
          std::vector<float> part(static_cast<size_t>(len * out));
          ops::matmul_with_isa(isa, x.data() + begin * k, len, w, bias.data(), part.data());
          ASSERT_EQ(0, std::memcmp(part.data(), all.data() + begin * out, part.size() * sizeof(float)))
              << ops::isa_name(isa) << " " << dtype_name(dtype) << " " << out << "x" << k << " rows [" << begin << ", "
              << begin + len << ")";
        }
      }
  }
}

std::unique_ptr<Model> tiny(const std::string& fam) { return load_model(test::data_dir() + "/" + fam); }

std::vector<int32_t> fixture_prompt(const std::string& fam, const std::string& key) {
  std::ifstream f(test::data_dir() + "/" + fam + "/prompts.json");
  return nlohmann::json::parse(f).at(key).at("ids").get<std::vector<int32_t>>();
}

class BatchOnModel : public ::testing::TestWithParam<const char*> {};

// A whole forward: sequences of different lengths in one call give each sequence's
// logits exactly as a call with that sequence alone (cached spans included).
TEST_P(BatchOnModel, ForwardSequencesDoNotDependOnEachOther) {
  auto m = tiny(GetParam());
  const std::vector<std::vector<int32_t>> seqs = {fixture_prompt(GetParam(), "chat"), fixture_prompt(GetParam(), "code"),
                                                  fixture_prompt(GetParam(), "text")};
  std::vector<KvCache> caches(seqs.size());
  // Fill each cache with its sequence, then query its last 5 rows against the cached rest.
  ForwardBatch joint;
  joint.seq_offsets = {0};
  std::vector<std::vector<float>> alone;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int L = int(seqs[s].size());
    caches[s].reset(m->config, L);
    ForwardBatch fill;
    fill.tokens = seqs[s];
    for (int p = 0; p < L; ++p) fill.positions.push_back(p);
    fill.kv = {SequenceKv{&caches[s], {}, true}};
    ForwardOutput o;
    forward(*m, fill, &o);
    ForwardBatch one;
    for (int p = L - 5; p < L; ++p) {
      one.tokens.push_back(seqs[s][size_t(p)]);
      one.positions.push_back(p);
      one.logit_rows.push_back(p - (L - 5));
      joint.logit_rows.push_back(int32_t(joint.tokens.size()) + p - (L - 5));
    }
    one.kv = {SequenceKv{&caches[s], {{0, L - 5}}, false}};
    forward(*m, one, &o);
    alone.push_back(o.logits);
    joint.tokens.insert(joint.tokens.end(), one.tokens.begin(), one.tokens.end());
    joint.positions.insert(joint.positions.end(), one.positions.begin(), one.positions.end());
    joint.seq_offsets.push_back(int32_t(joint.tokens.size()));
    joint.kv.push_back(one.kv[0]);
  }
  ForwardOutput o;
  forward(*m, joint, &o);
  std::vector<float> want;
  for (const auto& a : alone) want.insert(want.end(), a.begin(), a.end());
  EXPECT_EQ(o.logits, want);
}

// Everything a job's caller sees: the result and every step's committed / masked slots
// and canvas.
struct Trace {
  BlockDecodeResult result;
  std::vector<std::vector<int32_t>> committed, masked, canvases;
  StepCallback callback() {
    return [this](const StepEvent& e) {
      committed.push_back(e.committed);
      masked.push_back(e.masked);
      canvases.push_back(*e.canvas);
    };
  }
};

void expect_same(const Trace& got, const Trace& want, const std::string& what) {
  EXPECT_EQ(got.result.canvas, want.result.canvas) << what;
  EXPECT_EQ(got.result.forwards, want.result.forwards) << what;
  EXPECT_EQ(got.result.generated, want.result.generated) << what;
  EXPECT_EQ(got.result.ended, want.result.ended) << what;
  EXPECT_EQ(got.result.prompt_length, want.result.prompt_length) << what;
  EXPECT_EQ(got.committed, want.committed) << what;
  EXPECT_EQ(got.masked, want.masked) << what;
  EXPECT_EQ(got.canvases, want.canvases) << what;
}

Trace decode_alone(const Model& m, const std::vector<int32_t>& prompt, const BlockDecoderOptions& o, bool infill) {
  Trace t;
  const LogitSource src = model_logit_source(m);
  t.result = infill ? block_infill(src, prompt, o, t.callback()) : block_decode(src, prompt, o, t.callback());
  return t;
}

// One request of a batch: prompt, options, and when it joins (step index).
struct Request {
  std::vector<int32_t> prompt;
  BlockDecoderOptions options;
  bool infill = false;
  int join_at = 0;
};

// Runs the requests as one batch, admitting each at its step; returns the traces.
std::vector<Trace> decode_batched(const Model& m, const std::vector<Request>& requests) {
  std::vector<Trace> traces(requests.size());
  std::vector<std::unique_ptr<DecodeJob>> jobs;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto j = std::make_unique<DecodeJob>();
    j->prompt = requests[i].prompt;
    j->options = requests[i].options;
    j->infill = requests[i].infill;
    j->on_step = traces[i].callback();
    jobs.push_back(std::move(j));
  }
  std::vector<DecodeJob*> active;
  for (int step = 0;; ++step) {
    for (size_t i = 0; i < requests.size(); ++i)
      if (requests[i].join_at == step) active.push_back(jobs[i].get());
    const int left = batch_decode_step(m, active);
    std::erase_if(active, [](const DecodeJob* j) { return j->done; });  // retire
    EXPECT_EQ(left, int(active.size()));
    bool pending = false;
    for (const Request& r : requests) pending |= r.join_at > step;
    if (active.empty() && !pending) break;
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_TRUE(jobs[i]->done);
    EXPECT_EQ(jobs[i]->finish, jobs[i]->result.ended ? FinishReason::kEndToken : FinishReason::kLength)
        << jobs[i]->error;
    EXPECT_EQ(jobs[i]->steps, jobs[i]->result.forwards);
    traces[i].result = jobs[i]->result;
  }
  return traces;
}

BlockDecoderOptions options_for(const Model& m, BlockCache cache) {
  BlockDecoderOptions o;
  o.mask_id = m.config.special.mask;
  o.cache = cache;
  o.block_length = 8;
  o.max_tokens = 24;
  o.threshold = 0.3;  // the tiny models are unsure: commit several slots in some steps
  o.refresh_window = 3;
  return o;
}

std::string cache_name(BlockCache c) {
  return c == BlockCache::kNone     ? "none"
         : c == BlockCache::kPrefix ? "prefix"
         : c == BlockCache::kDual   ? "dual"
         : c == BlockCache::kWindow ? "window"
                                    : "delayed";
}

TEST_P(BatchOnModel, BatchedJobsEqualEachJobAlone) {
  auto m = tiny(GetParam());
  const int32_t mask = m->config.special.mask;
  const std::vector<int32_t> chat = fixture_prompt(GetParam(), "chat"), code = fixture_prompt(GetParam(), "code"),
                             text = fixture_prompt(GetParam(), "text");
  std::vector<int32_t> hole(text);
  hole.insert(hole.begin() + 5, 9, mask);
  for (BlockCache cache : {BlockCache::kNone, BlockCache::kPrefix, BlockCache::kDual, BlockCache::kWindow,
                           BlockCache::kDelayed}) {
    std::vector<Request> reqs;
    // Greedy, dynamic length, joining at step 0.
    reqs.push_back({chat, options_for(*m, cache), false, 0});
    // Seeded sampling with top-k / top-p, a fixed canvas and top-n commits, joining late.
    BlockDecoderOptions s = options_for(*m, cache);
    s.temperature = 0.9;
    s.top_k = 40;
    s.top_p = 0.95;
    s.seed = 1234;
    s.max_tokens = 0;
    s.gen_length = 16;
    s.steps = 8;
    s.commit = BlockCommit::kTopN;
    reqs.push_back({code, s, false, 2});
    // The same prompt and options with another seed: its own RNG stream.
    BlockDecoderOptions s2 = s;
    s2.seed = 99;
    reqs.push_back({code, s2, false, 0});
    // An end token: the token this job commits at answer slot 5 when it runs without
    // one (end ids only stop decoding, they change nothing before), so it leaves the
    // batch mid-way, at the step that commits it with nothing masked before it.
    BlockDecoderOptions e = options_for(*m, cache);
    e.temperature = 1.0;
    e.seed = 5;
    e.end_ids = {decode_alone(*m, text, e, false).result.canvas[text.size() + 5]};
    reqs.push_back({text, e, false, 1});
    // Infill with scattered masks.
    reqs.push_back({hole, options_for(*m, cache), true, 3});
    const std::vector<Trace> got = decode_batched(*m, reqs);
    for (size_t i = 0; i < reqs.size(); ++i)
      expect_same(got[i], decode_alone(*m, reqs[i].prompt, reqs[i].options, reqs[i].infill),
                  std::string(GetParam()) + " cache " + cache_name(cache) + " request " + std::to_string(i));
    EXPECT_NE(got[1].result.canvas, got[2].result.canvas) << "different seeds gave the same sample";
    EXPECT_TRUE(got[3].result.ended);
    EXPECT_LE(got[3].result.generated, 5);
  }
}

TEST_P(BatchOnModel, CancelledJobStopsAtTheNextStepAndTheOthersGoOn) {
  auto m = tiny(GetParam());
  const std::vector<int32_t> chat = fixture_prompt(GetParam(), "chat"), code = fixture_prompt(GetParam(), "code");
  DecodeJob a, b;
  a.prompt = chat;
  b.prompt = code;
  a.options = b.options = options_for(*m, BlockCache::kDual);
  a.options.threshold = b.options.threshold = 1.0;  // one slot per step: 24 steps
  Trace ta;
  a.on_step = ta.callback();
  std::vector<DecodeJob*> jobs{&a, &b};
  BatchStepStats st;
  batch_decode_step(*m, jobs, &st);
  EXPECT_EQ(st.jobs, 2);
  batch_decode_step(*m, jobs);
  b.cancel = true;
  batch_decode_step(*m, jobs, &st);
  EXPECT_TRUE(b.done);
  EXPECT_EQ(b.finish, FinishReason::kCancelled);
  EXPECT_EQ(b.steps, 2);
  EXPECT_EQ(st.jobs, 1);  // no rows spent on the cancelled job
  EXPECT_EQ(st.query_rows, 9);  // a's dual window: one row before the block + the block of 8
  EXPECT_EQ(std::string(finish_reason_name(b.finish)), "cancelled");
  batch_decode_all(*m, jobs);
  ta.result = a.result;
  expect_same(ta, decode_alone(*m, chat, a.options, false), "after a cancelled neighbour");
}

TEST_P(BatchOnModel, BadJobFinishesWithAnErrorAndTheOthersGoOn) {
  auto m = tiny(GetParam());
  const std::vector<int32_t> chat = fixture_prompt(GetParam(), "chat");
  DecodeJob good, bad_mask, too_long, bad_token;
  for (DecodeJob* j : {&good, &bad_mask, &too_long, &bad_token}) {
    j->prompt = chat;
    j->options = options_for(*m, BlockCache::kDual);
  }
  bad_mask.options.mask_id = m->config.vocab;
  too_long.options.max_tokens = int(m->config.max_context);
  bad_token.prompt[3] = -2;
  std::vector<DecodeJob*> jobs{&bad_mask, &good, &too_long, &bad_token};
  batch_decode_all(*m, jobs);
  EXPECT_EQ(good.finish, FinishReason::kLength);
  for (const DecodeJob* j : {&bad_mask, &too_long, &bad_token}) {
    EXPECT_EQ(j->finish, FinishReason::kError);
    EXPECT_EQ(j->error.find('\n'), std::string::npos);
    EXPECT_EQ(j->steps, 0);
  }
  EXPECT_NE(bad_mask.error.find("mask_id"), std::string::npos) << bad_mask.error;
  EXPECT_NE(too_long.error.find("context"), std::string::npos) << too_long.error;
  EXPECT_NE(bad_token.error.find("-2"), std::string::npos) << bad_token.error;
  Trace t;
  t.result = good.result;
  EXPECT_EQ(t.result.canvas, decode_alone(*m, chat, good.options, false).result.canvas);
}

TEST_P(BatchOnModel, BlockCausalModelsRefuseInfill) {
  auto m = tiny(GetParam());
  m->config.attention_block = 4;  // as a block-causal family declares it
  DecodeJob j;
  j.prompt = fixture_prompt(GetParam(), "chat");
  j.prompt[4] = m->config.special.mask;
  j.options = options_for(*m, BlockCache::kDual);
  j.infill = true;
  std::vector<DecodeJob*> jobs{&j};
  batch_decode_step(*m, jobs);
  EXPECT_EQ(j.finish, FinishReason::kError);
  EXPECT_NE(j.error.find("infill"), std::string::npos) << j.error;
  EXPECT_NE(j.error.find("block-causal"), std::string::npos) << j.error;
}

TEST(BatchSplit, EvenRowsSplitOverThreadsUnevenOnesStayTogether) {
  using Groups = std::vector<std::vector<size_t>>;
  EXPECT_EQ(split_into_groups({}, 4), Groups{});
  EXPECT_EQ(split_into_groups({9}, 2), (Groups{{0}}));
  EXPECT_EQ(split_into_groups({9, 9, 9}, 1), (Groups{{0, 1, 2}}));
  // Longest first onto the lightest group, each group in job order.
  EXPECT_EQ(split_into_groups({8, 8, 72, 8, 8, 72, 8, 8}, 2), (Groups{{0, 2, 3, 6}, {1, 4, 5, 7}}));
  EXPECT_EQ(split_into_groups({9, 9, 9, 9}, 8), (Groups{{0}, {1}, {2}, {3}}));
  // One 512-row refresh among 8-row steps: 2 x 528 / 544 > 1.3, one shared forward.
  EXPECT_EQ(split_into_groups({8, 512, 8, 8, 8}, 2), (Groups{{0, 1, 2, 3, 4}}));
}

TEST_P(BatchOnModel, WeightBytesPerStepDoNotGrowWithTheBatch) {
  auto m = tiny(GetParam());
  const std::vector<std::string> keys{"chat", "code", "text", "chat"};
  std::vector<double> bytes;
  std::vector<int> rows;
  for (size_t n : {size_t(1), size_t(2), size_t(4)}) {
    std::vector<std::unique_ptr<DecodeJob>> jobs;
    std::vector<DecodeJob*> ptrs;
    for (size_t i = 0; i < n; ++i) {
      jobs.push_back(std::make_unique<DecodeJob>());
      jobs.back()->prompt = fixture_prompt(GetParam(), keys[i]);
      jobs.back()->options = options_for(*m, BlockCache::kDual);
      jobs.back()->options.threshold = 1.0;  // one slot per step: the second step is inside the block
      ptrs.push_back(jobs.back().get());
    }
    BatchStepStats st;
    batch_decode_step(*m, ptrs, &st);  // block start: full canvases
    batch_decode_step(*m, ptrs, &st);  // in-block dual step: 9 rows per job
    EXPECT_EQ(st.jobs, int(n));
    EXPECT_EQ(st.query_rows, 9 * int(n));
    // Equal rows split evenly: one forward per thread (at most one per job), each
    // reading every weight once.
    EXPECT_EQ(st.forwards, std::min(int(n), omp_get_max_threads()));
    bytes.push_back(st.weight_bytes / st.forwards);
  }
  EXPECT_GT(bytes[0], 0);
  EXPECT_EQ(bytes[1], bytes[0]);
  EXPECT_EQ(bytes[2], bytes[0]);
}

std::string family_name(const ::testing::TestParamInfo<const char*>& p) {
  return std::string(p.param) == "llada-tiny" ? "llada" : "dream";
}
INSTANTIATE_TEST_SUITE_P(TinyModels, BatchOnModel, ::testing::Values("llada-tiny", "dream-tiny"), family_name);

}  // namespace
}  // namespace unmask
