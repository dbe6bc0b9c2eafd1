// The f32 forward of the fixture models against the reference PyTorch run
// (tests/data/*-tiny/forward/*.npy), and the batch contract: several sequences in
// one call equal separate calls, and a subset of logit rows equals the matching
// rows of the full logits. Also the forward's own input validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"
#include "unmask/error.h"
#include "unmask/model.h"
#include "unmask/npy.h"

namespace unmask {
namespace {

namespace fs = std::filesystem;
using test::throws_error;

// f32 weights and compute against the reference's f32 run: the reference's own
// f32-vs-f64 difference is <= 9e-6 (FIXTURES_README.md), so 1e-4 leaves room for a
// different summation order but catches any real error (logit std is ~5).
constexpr double kLogitTolerance = 1e-4;
// Hidden states are O(1-10) in magnitude, like the logits, and go through the same
// f32 arithmetic, so the same bound applies.
constexpr double kHiddenTolerance = 1e-4;

struct ForwardCase {
  std::string name;
  std::vector<int32_t> ids;
  NpyArray logits, hidden;
};

// Every forward fixture of a model folder, found by its input_ids file.
std::vector<ForwardCase> forward_cases(const std::string& model_dir) {
  std::vector<ForwardCase> cases;
  const std::string suffix = ".input_ids.npy";
  for (const auto& entry : fs::directory_iterator(model_dir + "/forward")) {
    const std::string file = entry.path().filename().string();
    if (file.size() <= suffix.size() || file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    ForwardCase c;
    c.name = file.substr(0, file.size() - suffix.size());
    for (int64_t id : read_npy(entry.path().string()).to_i64()) c.ids.push_back(int32_t(id));
    c.logits = read_npy(model_dir + "/forward/" + c.name + ".logits.f32.npy");
    c.hidden = read_npy(model_dir + "/forward/" + c.name + ".hidden.f32.npy");
    cases.push_back(std::move(c));
  }
  std::sort(cases.begin(), cases.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return cases;
}

ForwardBatch whole_sequence(const std::vector<int32_t>& ids) {
  ForwardBatch b;
  b.tokens = ids;
  for (int32_t i = 0; i < int32_t(ids.size()); ++i) {
    b.positions.push_back(i);
    b.logit_rows.push_back(i);
  }
  return b;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

class FixtureForward : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureForward, LogitsAndHiddenStatesMatchReference) {
  const std::string dir = test::data_dir() + "/" + GetParam();
  const auto model = load_model(dir);
  ASSERT_EQ(model->weight_dtype, DType::F32);
  const std::vector<ForwardCase> cases = forward_cases(dir);
  ASSERT_EQ(cases.size(), 3u) << "expected the three forward fixtures of " << dir;
  const ModelConfig& c = model->config;
  for (const ForwardCase& fc : cases) {
    SCOPED_TRACE(fc.name);
    const int64_t L = int64_t(fc.ids.size());
    ASSERT_EQ(fc.logits.shape, (std::vector<int64_t>{L, c.vocab}));
    ASSERT_EQ(fc.hidden.shape, (std::vector<int64_t>{c.n_layers + 1, L, c.hidden}));
    ForwardBatch batch = whole_sequence(fc.ids);
    batch.capture_hidden = true;
    ForwardOutput out;
    forward(*model, batch, &out);
    ASSERT_EQ(out.logits.size(), size_t(L * c.vocab));
    ASSERT_EQ(out.hidden.size(), size_t((c.n_layers + 1) * L * c.hidden));
    EXPECT_LE(max_abs_diff(out.logits, fc.logits.to_f32()), kLogitTolerance);
    const std::vector<float> want_hidden = fc.hidden.to_f32();
    const size_t layer_size = size_t(L * c.hidden);
    for (int l = 0; l <= c.n_layers; ++l) {
      const std::vector<float> got(out.hidden.begin() + std::ptrdiff_t(l * layer_size),
                                   out.hidden.begin() + std::ptrdiff_t((l + 1) * layer_size));
      const std::vector<float> want(want_hidden.begin() + std::ptrdiff_t(l * layer_size),
                                    want_hidden.begin() + std::ptrdiff_t((l + 1) * layer_size));
      EXPECT_LE(max_abs_diff(got, want), kHiddenTolerance) << "hidden row " << l;
    }
    EXPECT_GT(out.flops, 0);
  }
}

TEST_P(FixtureForward, BatchedSequencesEqualSeparateCalls) {
  const std::string dir = test::data_dir() + "/" + GetParam();
  const auto model = load_model(dir);
  const std::vector<ForwardCase> cases = forward_cases(dir);
  ASSERT_GE(cases.size(), 2u);
  const std::vector<int32_t>&a = cases[0].ids, &b = cases[1].ids;
  ASSERT_NE(a, b);
  ForwardOutput alone_a, alone_b, together;
  forward(*model, whole_sequence(a), &alone_a);
  forward(*model, whole_sequence(b), &alone_b);

  ForwardBatch batch;
  batch.tokens = a;
  batch.tokens.insert(batch.tokens.end(), b.begin(), b.end());
  for (size_t i = 0; i < a.size(); ++i) batch.positions.push_back(int32_t(i));
  for (size_t i = 0; i < b.size(); ++i) batch.positions.push_back(int32_t(i));  // each sequence from 0
  batch.seq_offsets = {0, int32_t(a.size()), int32_t(a.size() + b.size())};
  for (int32_t r = 0; r < int32_t(batch.tokens.size()); ++r) batch.logit_rows.push_back(r);
  forward(*model, batch, &together);

  const size_t vocab = size_t(model->config.vocab);
  ASSERT_EQ(together.logits.size(), (a.size() + b.size()) * vocab);
  const std::vector<float> first(together.logits.begin(), together.logits.begin() + std::ptrdiff_t(a.size() * vocab));
  const std::vector<float> second(together.logits.begin() + std::ptrdiff_t(a.size() * vocab), together.logits.end());
  // Row results do not depend on which other rows share the matmul, except through
  // the kernel's blocking; allow a few f32 ulps of logits of size ~20.
  EXPECT_LE(max_abs_diff(first, alone_a.logits), 1e-5);
  EXPECT_LE(max_abs_diff(second, alone_b.logits), 1e-5);
}

TEST_P(FixtureForward, LogitRowSubsetEqualsFullRows) {
  const std::string dir = test::data_dir() + "/" + GetParam();
  const auto model = load_model(dir);
  const std::vector<int32_t> ids = forward_cases(dir).at(0).ids;
  ForwardOutput full, some;
  forward(*model, whole_sequence(ids), &full);
  ForwardBatch batch = whole_sequence(ids);
  const int32_t last = int32_t(ids.size()) - 1;
  batch.logit_rows = {last, 0, 5, 5};  // any order, repeats allowed
  forward(*model, batch, &some);
  const size_t vocab = size_t(model->config.vocab);
  ASSERT_EQ(some.logits.size(), batch.logit_rows.size() * vocab);
  for (size_t r = 0; r < batch.logit_rows.size(); ++r) {
    const std::vector<float> got(some.logits.begin() + std::ptrdiff_t(r * vocab),
                                 some.logits.begin() + std::ptrdiff_t((r + 1) * vocab));
    const size_t row = size_t(batch.logit_rows[r]);
    const std::vector<float> want(full.logits.begin() + std::ptrdiff_t(row * vocab),
                                  full.logits.begin() + std::ptrdiff_t((row + 1) * vocab));
    // Same hidden row, LM head run on fewer rows: as above, only blocking can differ.
    EXPECT_LE(max_abs_diff(got, want), 1e-5) << "requested row " << row;
  }
  // No rows requested: no logits, and the head's work is not counted.
  batch.logit_rows.clear();
  ForwardOutput none;
  forward(*model, batch, &none);
  EXPECT_TRUE(none.logits.empty());
  EXPECT_LT(none.flops, full.flops);
}

// The last layer finishes only the rows read back (forward.cpp): two sequences, the
// second with no logit rows at all, and a KV cache written by the same call. The kept
// rows' logits match the full call's, the cache gets every row's k/v all the same, and
// the saved work shows in the FLOP count (more than the LM head rows alone).
TEST_P(FixtureForward, LastLayerFinishesOnlyTheRowsReadBack) {
  const std::string dir = test::data_dir() + "/" + GetParam();
  const auto model = load_model(dir);
  const ModelConfig& c = model->config;
  const std::vector<ForwardCase> cases = forward_cases(dir);
  const std::vector<int32_t>&a = cases.at(0).ids, &b = cases.at(1).ids;
  ForwardBatch batch;
  batch.tokens = a;
  batch.tokens.insert(batch.tokens.end(), b.begin(), b.end());
  for (size_t i = 0; i < a.size(); ++i) batch.positions.push_back(int32_t(i));
  for (size_t i = 0; i < b.size(); ++i) batch.positions.push_back(int32_t(i));
  const int32_t n = int32_t(batch.tokens.size()), na = int32_t(a.size());
  batch.seq_offsets = {0, na, n};
  KvCache cache_full, cache_some;
  const int capacity = int(std::max(a.size(), b.size()));
  cache_full.reset(c, capacity);
  cache_some.reset(c, capacity);

  ForwardOutput full, some;
  for (int32_t r = 0; r < n; ++r) batch.logit_rows.push_back(r);
  batch.kv = {SequenceKv{}, SequenceKv{&cache_full, {}, true}};
  forward(*model, batch, &full);
  batch.logit_rows = {na - 1, 2, 0, 2};  // first sequence only, any order, a repeat
  batch.kv = {SequenceKv{}, SequenceKv{&cache_some, {}, true}};
  forward(*model, batch, &some);

  const size_t vocab = size_t(c.vocab);
  ASSERT_EQ(some.logits.size(), batch.logit_rows.size() * vocab);
  for (size_t r = 0; r < batch.logit_rows.size(); ++r) {
    const size_t row = size_t(batch.logit_rows[r]);
    const std::vector<float> got(some.logits.begin() + std::ptrdiff_t(r * vocab),
                                 some.logits.begin() + std::ptrdiff_t((r + 1) * vocab));
    const std::vector<float> want(full.logits.begin() + std::ptrdiff_t(row * vocab),
                                  full.logits.begin() + std::ptrdiff_t((row + 1) * vocab));
    // The same row through fewer-row products: only the kernels' blocking can differ.
    EXPECT_LE(max_abs_diff(got, want), 1e-5) << "requested row " << row;
  }
  EXPECT_EQ(cache_some.k, cache_full.k);
  EXPECT_EQ(cache_some.v, cache_full.v);
  const double head_saved = 2.0 * double(n - 3) * double(c.hidden) * double(c.vocab);
  EXPECT_LT(some.flops, full.flops - head_saved) << "the last layer ran rows nobody reads";

  // Nothing read back: the call only stores k/v (the same as before), no logits.
  KvCache cache_none;
  cache_none.reset(c, capacity);
  batch.logit_rows.clear();
  batch.kv = {SequenceKv{}, SequenceKv{&cache_none, {}, true}};
  ForwardOutput none;
  forward(*model, batch, &none);
  EXPECT_TRUE(none.logits.empty());
  EXPECT_EQ(cache_none.k, cache_full.k);
  EXPECT_EQ(cache_none.v, cache_full.v);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, FixtureForward, ::testing::Values("llada-tiny", "dream-tiny"));

TEST(ForwardValidation, RejectsBadBatches) {
  const auto model = load_model(test::llada_dir());
  ForwardOutput out;
  ForwardBatch b = whole_sequence({1, 2, 3});
  b.tokens[1] = 512;
  EXPECT_TRUE(throws_error([&] { forward(*model, b, &out); }, {"token id 512 at row 1", "vocabulary [0, 512)"}));
  b.tokens[1] = -7;
  EXPECT_TRUE(throws_error([&] { forward(*model, b, &out); }, {"token id -7 at row 1"}));
  b = whole_sequence({1, 2, 3});
  b.positions[2] = 4096;
  EXPECT_TRUE(throws_error([&] { forward(*model, b, &out); }, {"position 4096 at row 2", "context of 4096"}));
  b = whole_sequence({1, 2, 3});
  b.positions.pop_back();
  EXPECT_TRUE(throws_error([&] { forward(*model, b, &out); }, {"2 positions for 3 tokens"}));
  b = whole_sequence({1, 2, 3});
  b.logit_rows = {3};
  EXPECT_TRUE(throws_error([&] { forward(*model, b, &out); }, {"logit row 3 outside [0, 3)"}));
  b = whole_sequence({1, 2, 3});
  b.seq_offsets = {0, 2};
  EXPECT_TRUE(throws_error([&] { forward(*model, b, &out); }, {"seq_offsets must start at 0 and end at the token count"}));
  b.seq_offsets = {0, 2, 1, 3};
  EXPECT_TRUE(throws_error([&] { forward(*model, b, &out); }, {"seq_offsets must be non-decreasing"}));
  EXPECT_TRUE(throws_error([&] { forward(*model, ForwardBatch{}, &out); }, {"empty batch"}));
}

}  // namespace
}  // namespace unmask
