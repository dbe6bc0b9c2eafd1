#include "decode/block_scoring.h"

#include <cmath>
#include <vector>

#include "decode/scoring.h"

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
  st.max = -INFINITY;
  float best = -INFINITY, second = -INFINITY;
  for (int v = 0; v < n; ++v) {
    const double l = row[v];
    if (l > st.max) {
      // Rescale the running sums to the new maximum: e^(l-m) = e^(l-m') e^(m'-m) and
      // (l - m) = (l - m') + (m' - m). The first entry starts the sums at 0.
      const double d = std::isinf(st.max) ? 0.0 : st.max - l;  // <= 0
      const double scale = std::isinf(st.max) ? 0.0 : std::exp(d);
      st.centered = scale * (st.centered + d * st.sum);
      st.sum = scale * st.sum;
      st.max = l;
    }
    const double e = std::exp(l - st.max);
    st.sum += e;
    st.centered += e * (l - st.max);
    if (v == exclude) continue;
    // Strict > keeps the first of equal logits, as argmax_first.
    if (row[v] > best || st.top1 < 0) {
      second = best;
      st.top2 = st.top1;
      best = row[v];
      st.top1 = v;
    } else if (row[v] > second || st.top2 < 0) {
      second = row[v];
      st.top2 = v;
    }
  }
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
