#include "decode/block_commit.h"

#include <algorithm>
#include <functional>

#include "decode/commit.h"

namespace unmask::decode {

namespace {

int clamp_count(int k, size_t n) { return n == 0 ? 0 : std::clamp(k, 1, int(n)); }

}  // namespace

std::vector<int> commit_top_n(const std::vector<double>& conf, int scheduled) {
  return top_k_indices(conf, clamp_count(scheduled, conf.size()));
}

std::vector<int> commit_threshold(const std::vector<double>& conf, double threshold) {
  return threshold_select(conf, int(conf.size()), [threshold](double c) { return c < threshold; });
}

int factor_count(const std::vector<double>& conf, double factor) {
  std::vector<double> c(conf);
  std::sort(c.begin(), c.end(), std::greater<double>());
  int n = 0;
  while (n < int(c.size()) && c[size_t(n)] >= 1.0 - factor / double(n + 2)) ++n;  // c_(n+1) vs 1 - f/(n+2)
  return clamp_count(n, c.size());
}

std::vector<int> commit_factor(const std::vector<double>& conf, double factor) {
  return top_k_indices(conf, factor_count(conf, factor));
}

std::vector<int> commit_dynamic(const std::vector<double>& conf, double threshold, int scheduled) {
  const int above = int(std::count_if(conf.begin(), conf.end(), [threshold](double c) { return c > threshold; }));
  const int floor = clamp_count(scheduled, conf.size());
  return top_k_indices(conf, std::max(above, floor));
}

std::vector<int> select_commits(const BlockDecoderOptions& opt, const std::vector<double>& conf, int scheduled) {
  switch (opt.commit) {
    case BlockCommit::kTopN: return commit_top_n(conf, scheduled);
    case BlockCommit::kFactor: return commit_factor(conf, opt.factor);
    case BlockCommit::kDynamic: return commit_dynamic(conf, opt.threshold, scheduled);
    case BlockCommit::kThreshold: break;
  }
  return commit_threshold(conf, opt.threshold);
}

}  // namespace unmask::decode
