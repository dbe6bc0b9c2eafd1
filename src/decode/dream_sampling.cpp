#include "decode/dream_sampling.h"

#include <cmath>

#include "decode/commit.h"
#include "decode/scoring.h"
#include "unmask/error.h"

namespace unmask::decode {

DreamSample dream_sample_row(float* row, int n, const DreamGenerateOptions& opt, DreamConfidence kind, Rng& rng,
                             float* probs) {
  if (opt.temperature > 0) {
    const float t = float(opt.temperature);  // logits / temperature in float32
    for (int v = 0; v < n; ++v) row[v] /= t;
  }
  if (opt.top_p < 1) top_p_filter(row, n, opt.top_p);
  if (opt.top_k > 0) top_k_filter(row, n, opt.top_k);
  softmax_f32(row, n, probs);
  DreamSample out;
  out.x0 = opt.temperature > 0 ? sample_categorical(probs, n, rng) : argmax_first(probs, n);
  out.confidence = probs[out.x0];
  if (kind == DreamConfidence::kMargin) out.confidence = margin_confidence(probs, n);
  if (kind == DreamConfidence::kNegEntropy) out.confidence = neg_entropy(probs, n);
  return out;
}

std::vector<int> dream_choose(const std::vector<float>& conf, int k, double alg_temp, Rng& rng) {
  if (k <= 0) return {};
  if (alg_temp == 0) return top_k_indices(conf, k);
  std::vector<float> scaled(conf.size()), w(conf.size());
  for (size_t j = 0; j < conf.size(); ++j) scaled[j] = conf[j] / float(alg_temp);
  if (!w.empty()) softmax_f32(scaled.data(), int(w.size()), w.data());
  return sample_without_replacement(w, k, rng);
}

void check_dream_options(const DreamGenerateOptions& opt) {
  const std::string n = "dream_generate";
  check(opt.steps > 0, n + ": steps " + std::to_string(opt.steps) + " must be positive");
  check(std::isfinite(opt.temperature) && opt.temperature >= 0,
        n + ": temperature " + std::to_string(opt.temperature) + " must be >= 0");
  check(opt.top_p > 0 && opt.top_p <= 1, n + ": top_p " + std::to_string(opt.top_p) + " must be in (0, 1]");
  check(opt.top_k >= 0, n + ": top_k " + std::to_string(opt.top_k) + " must be >= 0 (0 = none)");
  check(std::isfinite(opt.alg_temp) && opt.alg_temp >= 0, n + ": alg_temp " + std::to_string(opt.alg_temp) + " must be >= 0");
  check(opt.eps >= 0 && opt.eps < 1, n + ": eps " + std::to_string(opt.eps) + " must be in [0, 1)");
  check(std::isfinite(opt.threshold), n + ": threshold must be finite");
}

}  // namespace unmask::decode
