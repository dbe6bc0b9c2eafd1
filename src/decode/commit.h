// decode/commit.h — commit rules: which candidates of a step are written.
//
// Candidates are indexed 0..n-1 by the caller (usually the masked slots queried this
// step, in slot order); the rules return candidate indices.
#pragma once
#include <algorithm>
#include <numeric>
#include <vector>

namespace unmask::decode {

// Indices of the k largest confidences, best first (torch.topk). Tie order: torch's
// CPU topk compares values only (std::partial_sort / nth_element), so its order among
// equal values is unspecified; we take the lower index first (a stable sort). The
// reference fixtures have no exact ties at a cut (fp64 models give the same
// trajectory), so this choice never decides a fixture.
template <typename T>
std::vector<int> top_k_indices(const std::vector<T>& conf, int k) {
  std::vector<int> idx(conf.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::clamp(k, 0, int(conf.size()));
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return conf[size_t(a)] > conf[size_t(b)]; });
  idx.resize(size_t(k));
  return idx;
}

// Fast-dLLM threshold rule: among the top `k` (best first) the first is always
// committed, each other one only if its confidence is not below `threshold`.
// `below(c)` says whether c < threshold in the reference's precision.
template <typename T, typename Below>
std::vector<int> threshold_select(const std::vector<T>& conf, int k, Below below) {
  std::vector<int> top = top_k_indices(conf, k);
  std::vector<int> keep;
  for (size_t i = 0; i < top.size(); ++i)
    if (i == 0 || !below(conf[size_t(top[i])])) keep.push_back(top[i]);
  return keep;
}

// Fast-dLLM get_transfer_index_dynamic ("factor" rule) over all n candidates: sort
// confidences descending c_0 >= c_1 >= ...; thresholds th_0 = -1, th_i = 1 - f/(i+2);
// scan for the first i with c_i < th_i (i = n-1 when none). The reference then commits
// i slots, or i + 1 when i == 0 or i == n-1 (so a failure at the last position still
// commits everything: an upstream off-by-one we reproduce).
int factor_rule_count(std::vector<double> conf, double factor);

}  // namespace unmask::decode
