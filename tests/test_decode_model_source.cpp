// model_logit_source against direct forward calls on the tiny fixture models.
#include <gtest/gtest.h>

#include "test_util.h"
#include "unmask/decode.h"
#include "unmask/model.h"
#include "unmask/npy.h"

namespace unmask {
namespace {

void check_source(const std::string& fam, int shift) {
  auto m = load_model(std::string(UNMASK_TEST_DATA) + "/" + fam);
  ASSERT_EQ(m->config.logit_shift, shift);
  const int V = m->config.vocab;
  const auto ids64 = read_npy(std::string(UNMASK_TEST_DATA) + "/" + fam + "/forward/text16_5_masks.input_ids.npy").to_i64();
  const std::vector<int32_t> a(ids64.begin(), ids64.end());
  std::vector<int32_t> b = a;
  b[0] = b[2];  // a second, different canvas of the same length
  const std::vector<float> ra = test::full_forward_logits(*m, a), rb = test::full_forward_logits(*m, b);
  const LogitSource src = model_logit_source(*m);
  EXPECT_EQ(src.vocab, V);
  const std::vector<int32_t> slots{0, 1, 7, 15};
  std::vector<float> out;
  src.score({a, b}, slots, out);
  ASSERT_EQ(out.size(), 2 * slots.size() * size_t(V));
  for (size_t c = 0; c < 2; ++c)
    for (size_t j = 0; j < slots.size(); ++j) {
      const int row = slots[j] - shift < 0 ? slots[j] : slots[j] - shift;  // Dream: slot p from row p-1
      const std::vector<float>& ref = c == 0 ? ra : rb;
      for (int v = 0; v < V; v += 37)
        // Same model, same rows; batching two sequences may change the summation order only.
        EXPECT_NEAR(out[(c * slots.size() + j) * size_t(V) + size_t(v)], ref[size_t(row) * size_t(V) + size_t(v)], 1e-4)
            << fam << " canvas " << c << " slot " << slots[j];
    }
  src.score({a}, {}, out);
  EXPECT_TRUE(out.empty());  // no slots: no forward
}

TEST(ModelLogitSource, LladaRowsUnshifted) { check_source("llada-tiny", 0); }
TEST(ModelLogitSource, DreamRowsShiftedByOne) { check_source("dream-tiny", 1); }

}  // namespace
}  // namespace unmask
