// NVlabs/Fast-dLLM dream/model/generation_utils.py, alg='confidence_threshold' (no
// KV cache), step for step.
//
// M = #masks on the initial canvas must be a multiple of `steps`; n = M / steps.
// Each call scores every masked slot (sample_tokens, confidence p[x0]); with
// `left` = slots deferred by the previous step, the top (n + left) candidates are
// taken: the best always commits, each other one is deferred when its confidence is
// below the threshold (float32 compare). A deferral at the last step sets n = 0 and
// extends the loop by one step — once per step, since the extended step count is
// re-read for the next candidate, exactly as upstream's `steps += 1` inside the loop.
#include "decode/canvas.h"
#include "decode/commit.h"
#include "decode/dream_sampling.h"
#include "unmask/error.h"

namespace unmask::decode {

std::vector<int32_t> dream_threshold_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                              const DreamGenerateOptions& opt, const StepCallback& on_step) {
  const std::string name = "dream_generate(confidence_threshold)";
  std::vector<int32_t> x = init_canvas(src, prompt, opt.max_new_tokens, opt.mask_id, name);
  const int V = src.vocab, P = int(prompt.size()), L = int(x.size());
  const int32_t mask = opt.mask_id;
  const int total_masks = count_masks(x, mask, 0, L);
  check(total_masks % opt.steps == 0, name + ": " + std::to_string(total_masks) +
                                          " masked slots are not a multiple of steps " + std::to_string(opt.steps));
  int per_step = total_masks / opt.steps, left = 0, steps = opt.steps;
  const float threshold = float(opt.threshold);  // float32 tensor < Python float compares in float32
  Rng rng(opt.seed);
  std::vector<float> logits, probs(static_cast<size_t>(V));
  for (int i = 0; i < steps; ++i) {
    const std::vector<int32_t> masked = masked_slots(x, mask, L);
    query_logits(src, {x}, masked, logits);
    std::vector<int32_t> x0(masked.size());
    std::vector<float> conf(masked.size());
    for (size_t j = 0; j < masked.size(); ++j) {
      const auto r = dream_sample_row(logits.data() + j * size_t(V), V, opt, DreamConfidence::kProb, rng, probs.data());
      x0[j] = r.x0;
      conf[j] = r.confidence;
    }
    const int take = per_step + left;
    left = 0;
    const std::vector<int> top = top_k_indices(conf, take);
    std::vector<int32_t> committed;
    for (size_t k = 0; k < top.size(); ++k) {
      if (k > 0 && conf[size_t(top[k])] < threshold) {
        if (i >= steps - 1) {
          per_step = 0;
          ++steps;
        }
        ++left;
        continue;
      }
      x[size_t(masked[size_t(top[k])])] = x0[size_t(top[k])];
      committed.push_back(masked[size_t(top[k])]);
    }
    emit_step(on_step, i, steps, x, std::move(committed), P, mask);
  }
  return x;
}

}  // namespace unmask::decode
