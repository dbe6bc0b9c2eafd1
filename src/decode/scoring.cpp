#include "decode/scoring.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace unmask::decode {

void softmax_f32(const float* logits, int n, float* probs) {
  const float m = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int v = 0; v < n; ++v) {
    probs[v] = float(std::exp(double(logits[v] - m)));  // the difference is float32, as in torch
    sum += probs[v];
  }
  const float inv = 1.0f / float(sum);
  for (int v = 0; v < n; ++v) probs[v] *= inv;
}

void softmax_f64(const float* logits, int n, double* probs) {
  const double m = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int v = 0; v < n; ++v) {
    probs[v] = std::exp(double(logits[v]) - m);
    sum += probs[v];
  }
  const double inv = 1.0 / sum;
  for (int v = 0; v < n; ++v) probs[v] *= inv;
}

int argmax_first(const float* v, int n) {
  return int(std::max_element(v, v + n) - v);  // max_element returns the first of equals
}

void top_k_filter(float* logits, int n, int k) {
  if (k >= n || k <= 0) return;
  std::vector<float> tmp(logits, logits + n);
  std::nth_element(tmp.begin(), tmp.begin() + (k - 1), tmp.end(), std::greater<float>());
  const float kth = tmp[size_t(k - 1)];
  for (int v = 0; v < n; ++v)
    if (logits[v] < kth) logits[v] = kFloat32Lowest;
}

void top_p_filter(float* logits, int n, double top_p) {
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  std::vector<float> sorted(static_cast<size_t>(n)), probs(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) sorted[size_t(i)] = logits[order[size_t(i)]];
  softmax_f32(sorted.data(), n, probs.data());
  // torch.cumsum accumulates float32 in double on CPU and rounds each partial sum;
  // `cumulative > top_p` compares in float32 (the Python float becomes a float32 scalar).
  const float p = float(top_p);
  std::vector<bool> remove(size_t(n), false);
  double acc = 0;
  for (int i = 0; i < n; ++i) {
    acc += probs[size_t(i)];
    remove[size_t(i)] = float(acc) > p;
  }
  // Shift right by one: the first entry is always kept, entry i is dropped when entry i-1 crossed.
  for (int i = n - 1; i >= 1; --i)
    if (remove[size_t(i - 1)]) logits[order[size_t(i)]] = kFloat32Lowest;
}

float margin_confidence(const float* probs, int n) {
  float p1 = -INFINITY, p2 = -INFINITY;
  for (int v = 0; v < n; ++v) {
    if (probs[v] > p1) {
      p2 = p1;
      p1 = probs[v];
    } else if (probs[v] > p2) {
      p2 = probs[v];
    }
  }
  return n >= 2 ? p1 - p2 : p1;
}

float neg_entropy(const float* probs, int n) {
  double sum = 0;
  for (int v = 0; v < n; ++v) {
    const float lp = float(std::log(double(probs[v] + 1e-10f)));  // log(p + eps) in float32
    sum += double(probs[v] * lp);
  }
  return float(sum);
}

}  // namespace unmask::decode
