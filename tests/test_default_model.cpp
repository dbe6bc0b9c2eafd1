// The default model lookup of `unmask run` (tools/unmask/default_model.h): with no -m,
// the model is found relative to the binary — a copy of the CLI placed in a fresh
// bin/ folder finds ../models/NAME there, whatever the working directory — and a
// clear error names the places looked in when it is absent.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace unmask {
namespace {

namespace fs = std::filesystem;

constexpr const char* kName = "unmask-coder-tiny";  // tools/unmask/default_model.h

// `root`/bin/unmask: a copy of the built CLI.
std::string install_cli(const std::string& root) {
  fs::create_directories(root + "/bin");
  const std::string exe = root + "/bin/unmask";
  fs::copy_file(test::cli_path(), exe, fs::copy_options::overwrite_existing);
  return exe;
}

TEST(DefaultModel, RunWithoutModelUsesTheOneNextToTheBinary) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  test::TempDir root;
  const std::string exe = install_cli(root.path());
  const std::string model = root.path() + "/models/" + kName;
  fs::create_directories(model);
  test::copy_model_config(test::llada_dir(), model);
  fs::copy_file(test::llada_dir() + "/model.safetensors", model + "/model.safetensors");
  test::TempDir scratch;  // the command runs with the test's working directory, not `root`
  const auto r = test::run_command({exe, "run", "--ids", "1,2,3", "--max-tokens", "8", "--print-ids"}, scratch);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  // The same request with -m gives the same ids: the default really is that folder.
  const auto explicit_m =
      test::run_command({exe, "run", "-m", model, "--ids", "1,2,3", "--max-tokens", "8", "--print-ids"}, scratch);
  EXPECT_EQ(explicit_m.out, r.out);
}

TEST(DefaultModel, MissingDefaultModelIsAClearError) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  test::TempDir root;
  const std::string exe = install_cli(root.path());
  test::TempDir scratch;
  const auto r = test::run_command({exe, "run", "-p", "def f():"}, scratch);
  ASSERT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(kName), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(root.path() + "/models/" + kName), std::string::npos) << "names where it looked: " << r.err;
  EXPECT_NE(r.err.find("pass -m"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace unmask
