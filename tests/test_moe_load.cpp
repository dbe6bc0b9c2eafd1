// The MoE / block-causal family loaders on bad config.json values: each ends in one
// unmask::Error naming the file and the field, never a crash. And the fixtures' configs
// bind to the parameters the forward uses (experts, routing, pattern, fused QKV views).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kData = UNMASK_TEST_DATA;

// A copy of a fixture's config (edited) next to a link to its weights.
std::string edited_copy(const test::TempDir& dir, const std::string& fixture, void (*edit)(json&)) {
  test::copy_model_config(kData + "/" + fixture, dir.path());
  json config = test::read_json(dir.file("config.json"));
  edit(config);
  test::write_json(dir.file("config.json"), config);
  fs::create_symlink(kData + "/" + fixture + "/model.safetensors", dir.file("model.safetensors"));
  return dir.path();
}

TEST(FamiliesLoad, FixtureConfigsBindTheirParameters) {
  const auto l2 = load_model(kData + "/llada2-tiny");
  const ModelConfig& c = l2->config;
  EXPECT_EQ(c.family, "llada2");
  EXPECT_EQ(c.rotary_dim, 8);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.moe.n_experts, 8);
  EXPECT_EQ(c.moe.first_dense_layers, 1);
  EXPECT_EQ(c.moe.n_group, 2);
  EXPECT_EQ(c.moe.topk_group, 1);
  EXPECT_EQ(c.moe.score, RouterScore::kSigmoid);
  EXPECT_TRUE(l2->weights.layers[0].experts.empty());
  EXPECT_EQ(l2->weights.layers[1].experts.size(), 8u);
  // Fused query_key_value: q, k, v are consecutive row views of one tensor.
  const LayerWeights& L = l2->weights.layers[0];
  EXPECT_EQ(static_cast<const uint8_t*>(L.wk.data), static_cast<const uint8_t*>(L.wq.data) + L.wq.nbytes());
  EXPECT_EQ(static_cast<const uint8_t*>(L.wv.data), static_cast<const uint8_t*>(L.wk.data) + L.wk.nbytes());
  EXPECT_EQ(load_model(kData + "/sdar-tiny")->config.attention_block, 4);
  EXPECT_EQ(load_model(kData + "/fastdllmv2-tiny")->config.logit_shift, 1);
  const auto moe = load_model(kData + "/lladamoe-tiny");
  EXPECT_EQ(moe->config.moe.score, RouterScore::kSoftmax);
  EXPECT_FALSE(moe->config.moe.renormalize);
  EXPECT_LT(active_parameter_count(*moe), parameter_count(*moe));
}

TEST(FamiliesLoad, BadRoutingAndLayoutFieldsNameTheField) {
  test::TempDir a, b, c, d;
  EXPECT_TRUE(test::throws_error(
      [&] { load_model(edited_copy(a, "llada2-tiny", [](json& j) { j["n_group"] = 3; })); },
      {"config.json", "groups is inconsistent"}));
  EXPECT_TRUE(test::throws_error(
      [&] { load_model(edited_copy(b, "lladamoe-tiny", [](json& j) { j["moe_layer_freq"] = {1, 0, 1}; })); },
      {"config.json", "moe_layer_freq"}));
  EXPECT_TRUE(test::throws_error(
      [&] { load_model(edited_copy(c, "llada2-tiny", [](json& j) { j["score_function"] = "softmax"; })); },
      {"config.json", "score_function"}));
  EXPECT_TRUE(test::throws_error(
      [&] { load_model(edited_copy(d, "sdar-tiny", [](json& j) { j["block_size"] = 0; })); },
      {"config.json", "block_size"}));
}

}  // namespace
}  // namespace unmask
