// decode/block_scoring.h — the block decoder's per-slot scores from one logit row.
//
// fused_row_stats keeps only scalars, no probability vector is ever written: a first
// pass finds the maximum m and the two best candidate tokens, a second (SIMD, float64)
// sums e^(l-m) and e^(l-m)(l-m) (ops::exp_moments).
// From those: confidence p(top1), margin p(top1) - p(top2), and negative entropy
// sum_v p_v log p_v = T/S - log S with S = sum e^(l-m), T = sum e^(l-m)(l-m).
// The normaliser runs over the whole row (the model's distribution); the mask id is
// excluded only from the candidates (the decoder never commits it).
// reference_row_stats is the two-pass scalar reference over a materialised float64
// softmax, used by the tests.
#pragma once
#include <cstdint>

#include "unmask/decode.h"

namespace unmask::decode {

struct RowStats {
  int32_t top1 = -1, top2 = -1;  // best / second-best candidate; top2 = -1 with one candidate
  double max = 0;                // m: the row's maximum over every entry
  double sum = 0;                // S = sum_v e^(l_v - m)
  double centered = 0;           // T = sum_v e^(l_v - m) (l_v - m)
  const float* row = nullptr;    // the row the stats describe (borrowed)

  double prob(int32_t token) const;  // e^(l_token - m) / S
  double confidence() const { return prob(top1); }
  double margin() const { return top2 < 0 ? confidence() : prob(top1) - prob(top2); }
  double neg_entropy() const;
  double score(BlockScore kind) const;
};

// `exclude` (the mask id, or -1) is never top1 / top2. The row must hold a candidate
// (n >= 2 when exclude is in range).
RowStats fused_row_stats(const float* row, int n, int32_t exclude);

// The same three scores by the textbook route: float64 softmax into a vector, then
// argmax / second max / sum p log p. Returns {confidence, margin, neg_entropy} and top1.
struct ReferenceScores {
  int32_t top1 = -1;
  double confidence = 0, margin = 0, neg_entropy = 0;
};
ReferenceScores reference_row_stats(const float* row, int n, int32_t exclude);

}  // namespace unmask::decode
