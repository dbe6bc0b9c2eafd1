// inclusionAI/dFactory LLaDA2MoeModelLM.generate (see unmask/decode.h).
//
//   canvas x [nb·B] = prompt | masks, nb = ceil((P + gen) / B)
//   for blk = P / B .. nb-1:   (the first block may hold the prompt's tail)
//     for step < steps while the block has a mask:
//       logits = model(x[:blk_end]) at the block's masked slots (block-causal, no cache)
//       commit dynamic_select(p, sched[step], threshold)
//     stop once x[P:] holds eos
#include <algorithm>

#include "decode/block_diffusion.h"
#include "decode/schedule.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {

BlockGenerateResult llada2_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                    const Llada2GenerateOptions& opt, const StepCallback& on_step) {
  const std::string name = "llada2_generate";
  check(opt.mask_id >= 0, name + ": no mask id");
  check(opt.gen_length > 0 && opt.block_length > 0 && opt.steps > 0 && opt.minimal_topk > 0,
        name + ": gen_length, block_length, steps and minimal_topk must be positive");
  check(opt.temperature >= 0, name + ": temperature must not be negative");
  decode::require_block_attention(src, opt.block_length, name);
  const int P = int(prompt.size()), B = opt.block_length, V = src.vocab;
  const int steps = std::min(opt.steps, opt.gen_length / opt.minimal_topk);
  check(steps > 0, name + ": gen_length / minimal_topk leaves no step");
  const int n_blocks = (P + opt.gen_length + B - 1) / B;
  BlockGenerateResult r;
  std::vector<int32_t>& x = r.canvas;
  x.assign(size_t(n_blocks) * size_t(B), opt.mask_id);
  std::copy(prompt.begin(), prompt.end(), x.begin());
  const std::vector<int> sched = decode::llada_num_transfer_tokens(B, steps);
  decode::Rng rng(opt.seed);
  const decode::ChoiceOptions choice{opt.temperature, opt.top_p, opt.top_k};
  std::vector<float> logits;
  auto has_eos = [&] { return opt.eos_id >= 0 && std::find(x.begin() + P, x.end(), opt.eos_id) != x.end(); };
  int step_count = 0;
  bool stop = false;
  for (int blk = P / B; blk < n_blocks && !stop; ++blk) {
    const int begin = blk * B, end = begin + B;
    for (int step = 0; step < steps; ++step) {
      const std::vector<int32_t> masked = decode::masked_slots(x, begin, end, opt.mask_id);
      if (masked.empty()) break;
      src.score({std::vector<int32_t>(x.begin(), x.begin() + end)}, masked, logits);
      const std::vector<decode::TokenChoice> picks = decode::choose_tokens(logits, masked.size(), V, choice, rng);
      decode::commit_chosen(&x, masked, picks,
                            decode::dynamic_select(decode::confidences(picks), sched[size_t(step)], opt.threshold),
                            StepEvent{.step = step_count++, .prompt_length = P, .mask_id = opt.mask_id}, on_step);
      if (opt.eos_early_stop && opt.eos_id >= 0) {
        const auto eos = std::find(x.begin() + P, x.end(), opt.eos_id);
        if (eos != x.end() && std::find(x.begin() + P, eos, opt.mask_id) == eos) {
          stop = true;
          break;
        }
      }
    }
    if (has_eos()) stop = true;
  }
  // Returned ids: x[P : P + gen_length], cut after the first eos.
  auto last = x.begin() + std::min<size_t>(x.size(), size_t(P + opt.gen_length));
  if (opt.eos_id >= 0) {
    const auto eos = std::find(x.begin() + P, last, opt.eos_id);
    if (eos != last) last = eos + 1;
  }
  r.output.assign(x.begin(), last);
  return r;
}

}  // namespace unmask
