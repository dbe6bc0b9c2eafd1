// decode/dream_sampling.h — Dream's sample_tokens on one row of logits, and the
// internal entry point of the Fast-dLLM confidence-threshold variant.
#pragma once
#include <cstdint>
#include <vector>

#include "decode/sampling.h"
#include "unmask/decode.h"

namespace unmask::decode {

enum class DreamConfidence { kProb, kMargin, kNegEntropy };

// generation_utils.py::sample_tokens for one row (modified in place; `probs` is
// scratch of at least n floats): logits / T (T > 0); top_p filter (top_p < 1); top_k
// filter (top_k > 0); float32 softmax; x0 = categorical draw (T > 0) or first argmax;
// confidence = p[x0], or p1 - p2 (margin), or sum p log(p + 1e-10) (neg entropy).
struct DreamSample {
  int32_t x0 = 0;
  float confidence = 0;
};
DreamSample dream_sample_row(float* row, int n, const DreamGenerateOptions& opt, DreamConfidence kind, Rng& rng,
                             float* probs);

// Which of the candidates (confidences `conf`) a Dream step commits, best first: the
// top k (alg_temp = 0), or k drawn without replacement from softmax(conf / alg_temp)
// (upstream's torch.multinomial over the full confidence, where non-candidates are
// -inf and weigh 0). k <= 0 chooses none.
std::vector<int> dream_choose(const std::vector<float>& conf, int k, double alg_temp, Rng& rng);

// Validates the options shared by every Dream alg (throws Error).
void check_dream_options(const DreamGenerateOptions& opt);

// DreamAlg::kConfidenceThreshold (dream_threshold.cpp).
std::vector<int32_t> dream_threshold_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                              const DreamGenerateOptions& opt, const StepCallback& on_step);

}  // namespace unmask::decode
