#include "decode/block_scoring.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "decode/scoring.h"
#include "ops/cpu/vec_math.h"

namespace unmask::decode {

double RowStats::prob(int32_t token) const { return std::exp(double(row[token]) - max) / sum; }

double RowStats::neg_entropy() const { return centered / sum - std::log(sum); }

double RowStats::score(BlockScore kind) const {
  switch (kind) {
    case BlockScore::kMargin: return margin();
    case BlockScore::kNegEntropy: return neg_entropy();
    case BlockScore::kConfidence: break;
  }
  return confidence();
}

RowStats fused_row_stats(const float* row, int n, int32_t exclude) {
  RowStats st;
  st.row = row;
  // Pass 1: the maximum over every entry and the two best candidates.
  float mx = -INFINITY, best = -INFINITY, second = -INFINITY;
  for (int v = 0; v < n; ++v) {
    const float l = row[v];
    mx = std::max(mx, l);
    if (v == exclude) continue;
    // Strict > keeps the first of equal logits, as argmax_first.
    if (l > best || st.top1 < 0) {
      second = best;
      st.top2 = st.top1;
      best = l;
      st.top1 = v;
    } else if (l > second || st.top2 < 0) {
      second = l;
      st.top2 = v;
    }
  }
  // Pass 2: S and T about the maximum, 8 float64 lanes at a time (ops/cpu/vec_math.h).
  st.max = mx;
  const ops::ExpMoments moments = ops::exp_moments(ops::best_isa(), row, n, st.max);
  st.sum = moments.sum;
  st.centered = moments.centered;
  return st;
}

ReferenceScores reference_row_stats(const float* row, int n, int32_t exclude) {
  std::vector<double> p(static_cast<size_t>(n));
  softmax_f64(row, n, p.data());
  ReferenceScores r;
  int32_t second = -1;
  for (int v = 0; v < n; ++v) {
    if (v == exclude) continue;
    if (r.top1 < 0 || p[size_t(v)] > p[size_t(r.top1)]) {
      second = r.top1;
      r.top1 = v;
    } else if (second < 0 || p[size_t(v)] > p[size_t(second)]) {
      second = v;
    }
  }
  r.confidence = p[size_t(r.top1)];
  r.margin = second < 0 ? r.confidence : r.confidence - p[size_t(second)];
  for (double q : p)
    if (q > 0) r.neg_entropy += q * std::log(q);
  return r;
}

}  // namespace unmask::decode
