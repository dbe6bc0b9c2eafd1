// prefetch_weights: after it, the weight pages of a mapped model are in the process's
// page tables (the mapping's resident size covers the weights), and it reports progress
// up to the weights' distinct bytes.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"
#include "unmask/model.h"

namespace unmask {
namespace {

// Resident bytes of this process's mappings of `path` (/proc/self/smaps "Rss:" lines).
size_t mapped_rss(const std::string& path) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  size_t kib = 0;
  while (std::getline(smaps, line)) {
    std::istringstream fields(line);
    std::string first;
    fields >> first;
    if (!first.empty() && first.back() != ':') {  // a mapping's header line: its path is last
      inside = line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
    } else if (inside && first == "Rss:") {
      size_t v = 0;
      fields >> v;
      kib += v;
    }
  }
  return kib * 1024;
}

TEST(PrefetchWeights, MapsEveryWeightPageAndReportsProgress) {
  const std::string file = std::filesystem::canonical(test::llada_dir() + "/model.safetensors").string();
  const auto model = load_model(test::llada_dir());
  const size_t file_size = std::filesystem::file_size(file);
  const size_t before = mapped_rss(file);
  ASSERT_LT(before, file_size / 2) << "loading alone already touched the weights; the test would prove nothing";

  std::vector<std::pair<size_t, size_t>> calls;
  prefetch_weights(*model, [&](size_t done, size_t total) { calls.emplace_back(done, total); });
  ASSERT_FALSE(calls.empty());
  const size_t total = calls.back().second;
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].second, total);
    if (i > 0) {
      EXPECT_GT(calls[i].first, calls[i - 1].first);
    }
  }
  EXPECT_EQ(calls.back().first, total);
  // The weights are the file minus its JSON header (every tensor is bound; none tied here).
  EXPECT_EQ(total, size_t(parameter_count(*model)) * 4);
  EXPECT_LE(total, file_size);
  EXPECT_GE(mapped_rss(file), total) << "weight pages not mapped after prefetch";
}

// No callback, and a second call over pages already mapped: harmless, still all resident.
TEST(PrefetchWeights, WithoutProgressCallbackAndTwiceIsFine) {
  const auto model = load_model(test::llada_dir());
  prefetch_weights(*model);
  prefetch_weights(*model);
  const std::string file = std::filesystem::canonical(test::llada_dir() + "/model.safetensors").string();
  EXPECT_GE(mapped_rss(file), size_t(parameter_count(*model)) * 4);
}

}  // namespace
}  // namespace unmask
