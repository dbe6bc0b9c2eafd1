#include "decode/fast_dllm_commit.h"

#include <cmath>

#include "decode/commit.h"
#include "decode/scoring.h"
#include "unmask/error.h"

namespace unmask::decode {

void check_fast_dllm_options(const FastDllmLladaOptions& opt, const std::string& decoder) {
  check(std::isfinite(opt.temperature) && opt.temperature >= 0,
        decoder + ": temperature " + std::to_string(opt.temperature) + " must be >= 0");
  check(!opt.threshold || std::isfinite(*opt.threshold), decoder + ": threshold must be finite");
  check(!opt.factor || std::isfinite(*opt.factor), decoder + ": factor must be finite");
}

FastDllmCommit fast_dllm_commit(const FastDllmLladaOptions& opt, int vocab, const std::vector<int32_t>& slots,
                                const std::vector<float>& logits, int scheduled, Rng& rng, std::vector<int32_t>& x) {
  const size_t n = slots.size(), V = size_t(vocab);
  std::vector<int32_t> x0(n);
  std::vector<double> conf(n), probs(V);
  // All argmaxes first, then all confidences: the upstream order of RNG draws
  // (Gumbel noise for the whole tensor, then torch.rand for random remasking).
  for (size_t j = 0; j < n; ++j) {
    const float* row = logits.data() + j * V;
    x0[j] = opt.temperature == 0 ? argmax_first(row, vocab) : gumbel_argmax(row, vocab, opt.temperature, rng);
  }
  for (size_t j = 0; j < n; ++j) {
    if (opt.remasking == Remasking::kLowConfidence) {
      softmax_f64(logits.data() + j * V, vocab, probs.data());
      conf[j] = probs[size_t(x0[j])];
    } else {
      conf[j] = rng.uniform_f32();  // torch.rand: float32 confidences
    }
  }
  std::vector<int> chosen;
  if (opt.factor) {
    chosen = top_k_indices(conf, factor_rule_count(conf, *opt.factor));
  } else if (opt.threshold) {
    const double t = *opt.threshold;
    // float32 confidences (random remasking) compare in float32, as torch does with a Python float.
    const bool f32 = opt.remasking == Remasking::kRandom;
    chosen = threshold_select(conf, int(n), [&](double c) { return f32 ? float(c) < float(t) : c < t; });
  } else {
    chosen = top_k_indices(conf, scheduled);
  }
  FastDllmCommit out;
  for (int j : chosen) {
    int32_t& slot = x[size_t(slots[size_t(j)])];
    out.changed |= slot != x0[size_t(j)];
    slot = x0[size_t(j)];
    out.committed.push_back(slots[size_t(j)]);
  }
  return out;
}

}  // namespace unmask::decode
