// `unmask run --decoder reference` on the block-causal families drives each family's own
// paper decoder (family_reference_generate: llada2 / sdar / fast_dllm_v2 generate).
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"
#include "unmask/family_decode.h"
#include "unmask/model.h"

namespace unmask {
namespace {

std::vector<int32_t> parse_ids(const std::string& line) {
  std::vector<int32_t> ids;
  std::stringstream in(line);
  std::string item;
  while (std::getline(in, item, ',')) ids.push_back(int32_t(std::stoi(item)));
  return ids;
}

struct FamilyCase {
  const char* dir;
  const char* family;
};

class RunReference : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(RunReference, CliPrintsWhatTheFamilyDecoderReturns) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  const std::string dir = test::data_dir() + "/" + GetParam().dir;
  const auto model = load_model(dir);
  const ModelConfig& c = model->config;
  ASSERT_EQ(c.family, GetParam().family);
  ASSERT_GT(c.attention_block, 0);
  const std::vector<int32_t> prompt = {5, 17, 42, 99, 7};
  const int gen = 12;

  test::TempDir scratch;
  const auto r = test::run_command({test::cli_path(), "run", "-m", dir, "--decoder", "reference", "--ids", "5,17,42,99,7",
                                    "--gen-length", std::to_string(gen), "--temperature", "0", "--print-ids",
                                    "--no-live", "--threads", "1"},
                                   scratch);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<int32_t> printed = parse_ids(r.out.substr(0, r.out.find('\n')));

  // The same decoders called in-process with the model-card settings.
  const LogitSource src = model_logit_source(*model, LogitSourceOptions{.attention_block = c.attention_block});
  const std::vector<int32_t> expect = family_reference_generate(*model, src, prompt, gen, FamilyDecodeOptions{});
  const std::vector<int32_t> answer(expect.begin() + std::ptrdiff_t(prompt.size()), expect.end());
  EXPECT_EQ(printed, answer) << r.out;
  EXPECT_NE(r.err.find("forwards"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(BlockCausal, RunReference,
                         ::testing::Values(FamilyCase{"llada2-tiny", "llada2"}, FamilyCase{"sdar-tiny", "sdar"},
                                           FamilyCase{"fastdllmv2-tiny", "fast_dllm_v2"}),
                         [](const ::testing::TestParamInfo<FamilyCase>& p) { return std::string(p.param.family); });

}  // namespace
}  // namespace unmask
