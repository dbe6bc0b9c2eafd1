// `unmask conform` end to end: runs the CLI on temp copies of fixture directories
// (renamed, pruned, or corrupted) and checks its lines and exit code.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"
#include "unmask/npy.h"

namespace unmask {
namespace {

namespace fs = std::filesystem;
using test::CommandResult;
using test::TempDir;

// A copy of fixture `fam` under a new name (the manifest's paths still carry the old
// one) whose manifest lists only the given cases.
std::string pruned_copy(const TempDir& tmp, const std::string& fam, const std::vector<std::string>& forward,
                        const std::vector<std::string>& generate) {
  const std::string dst = tmp.file("renamed-" + fam);
  fs::copy(test::data_dir() + "/" + fam, dst, fs::copy_options::recursive);
  nlohmann::json m = test::read_json(dst + "/manifest.json");
  nlohmann::json f = nlohmann::json::object(), g = nlohmann::json::object();
  for (const auto& n : forward) f[n] = m["forward"].at(n);
  for (const auto& n : generate) g[n] = m["generate"].at(n);
  m["forward"] = f;
  m["generate"] = g;
  test::write_json(dst + "/manifest.json", m);
  return dst;
}

CommandResult conform(const TempDir& tmp, const std::string& dir) {
  return test::run_command({test::cli_path(), "conform", dir}, tmp);
}

bool has_line(const std::string& out, const std::string& line) {
  return ("\n" + out).find("\n" + line + "\n") != std::string::npos;
}

TEST(Conform, PassesLladaCasesEndToEnd) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  TempDir tmp;
  const std::string dir = pruned_copy(tmp, "llada-tiny", {"text16_5_masks"},
                                      {"ref_gen32_blk8_steps16_cfg0", "ref_gen32_blk8_steps16_cfg1.0",
                                       "fast_nocache_gen32_blk8_steps16_thr0.9", "fast_dualcache_gen32_blk8_steps16_thr0.9"});
  const CommandResult r = conform(tmp, dir);
  ASSERT_TRUE(r.exited) << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has_line(r.out, "PASS forward/text16_5_masks")) << r.out;
  EXPECT_TRUE(has_line(r.out, "PASS generate/ref_gen32_blk8_steps16_cfg1.0")) << r.out;
  EXPECT_TRUE(has_line(r.out, "PASS generate/fast_dualcache_gen32_blk8_steps16_thr0.9")) << r.out;
  EXPECT_TRUE(has_line(r.out, "5 passed, 0 failed, 0 skipped")) << r.out;  // exactly the listed cases
}

TEST(Conform, PassesDreamCasesEndToEnd) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  TempDir tmp;
  const std::string dir = pruned_copy(tmp, "dream-tiny", {"chat_plus_12_masks"},
                                      {"hf_topk_margin_steps32_topk50inherited", "hf_entropy_steps16_topkNone",
                                       "fast_threshold_nocache_steps16_thr0.9"});
  const CommandResult r = conform(tmp, dir);
  ASSERT_TRUE(r.exited) << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has_line(r.out, "4 passed, 0 failed, 0 skipped")) << r.out;
}

TEST(Conform, ReportsCorruptedStates) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  TempDir tmp;
  const std::string dir = pruned_copy(tmp, "llada-tiny", {}, {"ref_gen32_blk8_steps16_cfg0", "ref_gen32_blk16_steps16_cfg0"});
  const std::string states = dir + "/generate/ref_gen32_blk8_steps16_cfg0.states.npy";
  NpyArray a = read_npy(states);
  std::vector<int64_t> v = a.to_i64();
  const int64_t width = a.shape[1], old = v[size_t(5 * width + 27)];
  v[size_t(5 * width + 27)] = 223;
  write_npy(states, npy_from_i64(v, a.shape));
  const CommandResult r = conform(tmp, dir);
  ASSERT_TRUE(r.exited) << r.err;
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has_line(r.out, "FAIL generate/ref_gen32_blk8_steps16_cfg0: row 5 slot 27: got " + std::to_string(old) +
                                  " want 223"))
      << r.out;
  EXPECT_TRUE(has_line(r.out, "PASS generate/ref_gen32_blk16_steps16_cfg0")) << r.out;
  EXPECT_TRUE(has_line(r.out, "1 passed, 1 failed, 0 skipped")) << r.out;
}

TEST(Conform, MissingOrMalformedFilesFailTheirCase) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  TempDir tmp;
  const std::string dir = pruned_copy(tmp, "dream-tiny", {"text16_5_masks", "code_plus_26_masks"},
                                      {"hf_maskgit_plus_steps16_topkNone", "hf_entropy_steps12_topk50inherited"});
  fs::remove(dir + "/forward/text16_5_masks.logits.f32.npy");
  test::write_file(dir + "/forward/code_plus_26_masks.hidden.f32.npy", std::string("\x93NUMPY garbage"));
  test::write_file(dir + "/generate/hf_maskgit_plus_steps16_topkNone.states.npy",
                   serialize_npy(npy_from_i64({1, 2, 3}, {3})));
  nlohmann::json m = test::read_json(dir + "/manifest.json");
  m["generate"]["hf_entropy_steps12_topk50inherited"]["final_ids"][30] = 7;
  test::write_json(dir + "/manifest.json", m);
  const CommandResult r = conform(tmp, dir);
  ASSERT_TRUE(r.exited) << "crashed: signal " << r.signal;
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has_line(r.out, "FAIL forward/text16_5_masks: forward/text16_5_masks.logits.f32.npy: missing")) << r.out;
  EXPECT_NE(r.out.find("FAIL forward/code_plus_26_masks: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("code_plus_26_masks.hidden.f32.npy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAIL generate/hf_maskgit_plus_steps16_topkNone: generate/hf_maskgit_plus_steps16_topkNone"
                       ".states.npy: shape [3], manifest says [17,51]"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("FAIL generate/hf_entropy_steps12_topk50inherited: final_ids slot 30: got "), std::string::npos)
      << r.out;
  EXPECT_TRUE(has_line(r.out, "0 passed, 4 failed, 0 skipped")) << r.out;
}

TEST(Conform, UnreplayableAndUnknownCases) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  TempDir tmp;
  const std::string dir = pruned_copy(tmp, "llada-tiny", {},
                                      {"ref_gen32_blk8_steps16_cfg0", "ref_gen32_blk16_steps16_cfg0",
                                       "fast_nocache_gen32_blk8_steps16_thr0.9"});
  nlohmann::json m = test::read_json(dir + "/manifest.json");
  m["generate"]["ref_gen32_blk8_steps16_cfg0"]["kwargs"]["temperature"] = 0.7;
  m["generate"]["ref_gen32_blk16_steps16_cfg0"]["function"] = "someone/else sample.py::generate";
  m["generate"]["fast_nocache_gen32_blk8_steps16_thr0.9"]["kwargs"]["factorial"] = 3;
  test::write_json(dir + "/manifest.json", m);
  const CommandResult r = conform(tmp, dir);
  ASSERT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has_line(r.out, "SKIP generate/ref_gen32_blk8_steps16_cfg0: samples with torch's RNG (temperature > 0)"))
      << r.out;
  EXPECT_TRUE(has_line(r.out, "FAIL generate/ref_gen32_blk16_steps16_cfg0: unsupported function 'someone/else "
                              "sample.py::generate'"))
      << r.out;
  EXPECT_TRUE(has_line(r.out, "FAIL generate/fast_nocache_gen32_blk8_steps16_thr0.9: kwargs.factorial: not supported by "
                              "this function"))
      << r.out;
}

TEST(Conform, BadDirectoryIsOneErrorLine) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  TempDir tmp;
  const CommandResult r = conform(tmp, tmp.file("nope"));
  ASSERT_TRUE(r.exited);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("not a directory"), std::string::npos) << r.err;
  fs::create_directory(tmp.file("empty"));
  const CommandResult e = conform(tmp, tmp.file("empty"));
  EXPECT_NE(e.exit_code, 0);
  EXPECT_NE(e.err.find("manifest.json"), std::string::npos) << e.err;
}

}  // namespace
}  // namespace unmask
