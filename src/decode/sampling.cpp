#include "decode/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace unmask::decode {

int gumbel_argmax(const float* logits, int n, double temperature, Rng& rng) {
  int best = 0;
  double best_v = -INFINITY;
  for (int v = 0; v < n; ++v) {
    // u = 0 gives -log(u) = inf and a score of 0 (never above a positive score), as in torch.
    const double noise = std::pow(-std::log(rng.uniform()), temperature);
    const double score = std::exp(double(logits[v])) / noise;
    if (v == 0 || score > best_v) {
      best_v = score;
      best = v;
    }
  }
  return best;
}

int sample_categorical(const float* probs, int n, Rng& rng) {
  double total = 0;
  for (int v = 0; v < n; ++v) total += probs[v] > 0 ? double(probs[v]) : 0.0;
  if (!(total > 0)) return int(std::max_element(probs, probs + n) - probs);
  const double target = rng.uniform() * total;
  double acc = 0;
  int last_positive = 0;
  for (int v = 0; v < n; ++v) {
    if (!(probs[v] > 0)) continue;
    acc += double(probs[v]);
    last_positive = v;
    if (target < acc) return v;
  }
  return last_positive;  // rounding left target == total
}

std::vector<int> sample_without_replacement(const std::vector<float>& weights, int k, Rng& rng) {
  const int n = int(weights.size());
  k = std::clamp(k, 0, n);
  std::vector<double> key(static_cast<size_t>(n), 0.0);
  for (int i = 0; i < n; ++i) {
    const double e = -std::log(1.0 - rng.uniform());  // Exp(1); 1-u is in (0, 1]
    key[size_t(i)] = weights[size_t(i)] > 0 ? double(weights[size_t(i)]) / e : -1.0;
  }
  std::vector<int> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  // Stable: equal keys (the zero-weight ones, all -1) keep index order.
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return key[size_t(a)] > key[size_t(b)]; });
  idx.resize(size_t(k));
  return idx;
}

}  // namespace unmask::decode
