// KV-cache forward: recomputing only some rows while reading the others' cached
// K/V gives the same logits as a full forward when the cached rows are current.
#include <gtest/gtest.h>

#include <cmath>

#include "unmask/model.h"

namespace unmask {
namespace {

struct Fixture {
  std::unique_ptr<Model> model;
  std::vector<int32_t> canvas;
};

Fixture make(const char* family) {
  Fixture f;
  f.model = load_model(std::string(UNMASK_TEST_DATA) + "/" + family);
  const int32_t mask = f.model->config.special.mask;
  for (int i = 0; i < 37; ++i) f.canvas.push_back(i < 20 ? (i * 37 + 11) % 480 : (i % 3 == 0 ? (i * 13) % 480 : mask));
  return f;
}

ForwardBatch rows(const std::vector<int32_t>& canvas, int begin, int end) {
  ForwardBatch b;
  for (int p = begin; p < end; ++p) {
    b.tokens.push_back(canvas[size_t(p)]);
    b.positions.push_back(p);
    b.logit_rows.push_back(p - begin);
  }
  return b;
}

// Tolerance 2e-5: the cached path sums the same terms in the same position order,
// but the attention matmul blocks differ in size, so rounding may differ slightly.
void expect_rows_equal(const std::vector<float>& full, int row0, const std::vector<float>& part, int vocab) {
  const size_t n = part.size() / size_t(vocab);
  for (size_t r = 0; r < n; ++r)
    for (int j = 0; j < vocab; ++j)
      ASSERT_NEAR(part[r * size_t(vocab) + size_t(j)], full[(size_t(row0) + r) * size_t(vocab) + size_t(j)], 2e-5)
          << "row " << r << " vocab " << j;
}

class KvCacheForward : public ::testing::TestWithParam<const char*> {};

TEST_P(KvCacheForward, PrefixAndDualQueriesMatchFullForward) {
  Fixture f = make(GetParam());
  const Model& m = *f.model;
  const int L = int(f.canvas.size()), bs = 23, be = 31;
  KvCache cache;
  cache.reset(m.config, L);

  ForwardBatch full = rows(f.canvas, 0, L);
  full.kv = {SequenceKv{&cache, {}, true}};
  ForwardOutput full_out;
  forward(m, full, &full_out);

  ForwardBatch prefix = rows(f.canvas, bs, L);  // block + suffix, prefix from cache
  prefix.kv = {SequenceKv{&cache, {{0, bs}}, false}};
  ForwardOutput prefix_out;
  forward(m, prefix, &prefix_out);
  expect_rows_equal(full_out.logits, bs, prefix_out.logits, m.config.vocab);

  ForwardBatch dual = rows(f.canvas, bs, be);  // block only, prefix and suffix from cache
  dual.kv = {SequenceKv{&cache, {{0, bs}, {be, L}}, true}};
  ForwardOutput dual_out;
  forward(m, dual, &dual_out);
  expect_rows_equal(full_out.logits, bs, dual_out.logits, m.config.vocab);
  EXPECT_LT(dual_out.flops, full_out.flops / 3);
}

TEST_P(KvCacheForward, StaleCacheChangesResult) {
  // After the prefix changes, reading the stale cache must differ from a fresh forward:
  // the cache really is what the query attends to.
  Fixture f = make(GetParam());
  const Model& m = *f.model;
  const int L = int(f.canvas.size()), bs = 23;
  KvCache cache;
  cache.reset(m.config, L);
  ForwardBatch full = rows(f.canvas, 0, L);
  full.kv = {SequenceKv{&cache, {}, true}};
  ForwardOutput out;
  forward(m, full, &out);
  std::vector<int32_t> changed = f.canvas;
  changed[3] = (changed[3] + 1) % 400;
  ForwardOutput fresh, stale;
  forward(m, rows(changed, 0, L), &fresh);
  ForwardBatch q = rows(changed, bs, L);
  q.kv = {SequenceKv{&cache, {{0, bs}}, false}};
  forward(m, q, &stale);
  double max_diff = 0;
  for (size_t i = 0; i < stale.logits.size(); ++i)
    max_diff = std::max(max_diff, double(std::fabs(stale.logits[i] - fresh.logits[size_t(bs) * size_t(m.config.vocab) + i])));
  EXPECT_GT(max_diff, 1e-3);
}

TEST(KvCacheForwardErrors, SpanOutsideCacheIsRejected) {
  Fixture f = make("llada-tiny");
  KvCache cache;
  cache.reset(f.model->config, 10);
  ForwardBatch b = rows(f.canvas, 0, 5);
  b.kv = {SequenceKv{&cache, {{5, 12}}, false}};
  ForwardOutput out;
  try {
    forward(*f.model, b, &out);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("outside the cache"), std::string::npos) << e.what();
  }
}

std::string family_name(const ::testing::TestParamInfo<const char*>& param) {
  return std::string(param.param) == "llada-tiny" ? "llada" : "dream";
}

INSTANTIATE_TEST_SUITE_P(TinyModels, KvCacheForward, ::testing::Values("llada-tiny", "dream-tiny"), family_name);

}  // namespace
}  // namespace unmask
