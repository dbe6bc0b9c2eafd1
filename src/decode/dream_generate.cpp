// Dream DreamGenerationMixin.diffusion_generate (HF generation_utils.py), step for step.
//
// Canvas [prompt | max_new_tokens masks]; ts = float32 linspace(1, eps, steps + 1);
// step i (t = ts[i], s = ts[i+1]) makes one model call on the whole canvas. The
// LogitSource applies Dream's logit shift (slot p scored by row p - 1).
//   origin: each masked slot is unmasked with probability 1 - s/t (1 at the last
//     step) with a token from sample_tokens; only those slots are queried.
//   maskgit_plus / topk_margin / entropy: sample_tokens on every masked slot gives x0
//     and a confidence (p[x0], p1 - p2, negative entropy); k = int(#masks * (1 - s/t))
//     (all at the last step, possibly 0); commit the top-k confidences (alg_temp = 0)
//     or k slots drawn without replacement from softmax(confidence / alg_temp).
// As upstream, x0 may be the mask id (the slot stays masked).
#include "decode/canvas.h"
#include "decode/dream_sampling.h"
#include "decode/schedule.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {

std::vector<int32_t> dream_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                    const DreamGenerateOptions& opt, const StepCallback& on_step) {
  decode::check_dream_options(opt);
  if (opt.alg == DreamAlg::kConfidenceThreshold) return decode::dream_threshold_generate(src, prompt, opt, on_step);
  std::vector<int32_t> x = decode::init_canvas(src, prompt, opt.max_new_tokens, opt.mask_id, "dream_generate");
  const int V = src.vocab, P = int(prompt.size()), L = int(x.size());
  const int32_t mask = opt.mask_id;
  const std::vector<float> ts = decode::dream_timesteps(opt.steps, opt.eps);
  const decode::DreamConfidence kind = opt.alg == DreamAlg::kTopkMargin ? decode::DreamConfidence::kMargin
                                       : opt.alg == DreamAlg::kEntropy  ? decode::DreamConfidence::kNegEntropy
                                                                        : decode::DreamConfidence::kProb;
  decode::Rng rng(opt.seed);
  std::vector<float> logits, probs(static_cast<size_t>(V));
  for (int i = 0; i < opt.steps; ++i) {
    const float t = ts[size_t(i)], s = ts[size_t(i) + 1];
    const bool last = i == opt.steps - 1;
    std::vector<int32_t> masked = decode::masked_slots(x, mask, L);
    std::vector<int32_t> committed;
    if (opt.alg == DreamAlg::kOrigin) {
      // rand < p_transfer in float32; at the last step p_transfer is 1 and rand < 1 always.
      const float p_transfer = last ? 1.0f : 1.0f - s / t;
      for (int32_t slot : masked)
        if (rng.uniform_f32() < p_transfer) committed.push_back(slot);
      decode::query_logits(src, {x}, committed, logits);
      for (size_t j = 0; j < committed.size(); ++j)
        x[size_t(committed[j])] = decode::dream_sample_row(logits.data() + j * size_t(V), V, opt, kind, rng,
                                                           probs.data()).x0;
    } else {
      decode::query_logits(src, {x}, masked, logits);
      std::vector<int32_t> x0(masked.size());
      std::vector<float> conf(masked.size());
      for (size_t j = 0; j < masked.size(); ++j) {
        const auto r = decode::dream_sample_row(logits.data() + j * size_t(V), V, opt, kind, rng, probs.data());
        x0[j] = r.x0;
        conf[j] = r.confidence;
      }
      const int k = decode::dream_transfer_count(int(masked.size()), t, s, last);
      for (int j : decode::dream_choose(conf, k, opt.alg_temp, rng)) {
        x[size_t(masked[size_t(j)])] = x0[size_t(j)];
        committed.push_back(masked[size_t(j)]);
      }
    }
    decode::emit_step(on_step, i, opt.steps, x, std::move(committed), P, mask);
  }
  return x;
}

bool parse_dream_alg(const std::string& s, DreamAlg* out) {
  if (s == "origin") *out = DreamAlg::kOrigin;
  else if (s == "maskgit_plus") *out = DreamAlg::kMaskgitPlus;
  else if (s == "topk_margin") *out = DreamAlg::kTopkMargin;
  else if (s == "entropy") *out = DreamAlg::kEntropy;
  else if (s == "confidence_threshold") *out = DreamAlg::kConfidenceThreshold;
  else return false;
  return true;
}

}  // namespace unmask
