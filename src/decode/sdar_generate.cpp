// JetAstra/SDAR block_diffusion_generate with an exact KV cache (see unmask/decode.h).
//
//   canvas x [nb·B] = prompt | masks; prefill rows [0, (P / B)·B) storing K/V
//   for blk = P / B .. nb-1:
//     while the block has a mask: logits = model(block | cached prefix), nothing stored;
//                                 commit by the strategy with sched[step]
//     one more call on the finished block storing its K/V (never K/V computed with masks)
//     stop once a stop id appears in x[P:]
#include <algorithm>

#include "decode/block_diffusion.h"
#include "decode/commit.h"
#include "decode/schedule.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {

bool parse_sdar_strategy(const std::string& s, SdarStrategy* out) {
  if (s == "sequential") *out = SdarStrategy::kSequential;
  else if (s == "low_confidence_static") *out = SdarStrategy::kLowConfidenceStatic;
  else if (s == "low_confidence_dynamic") *out = SdarStrategy::kLowConfidenceDynamic;
  else if (s == "entropy_bounded") *out = SdarStrategy::kEntropyBounded;
  else return false;
  return true;
}

namespace {

// Candidate indices (into the block's masked slots, ascending) committed by one step.
std::vector<int> sdar_select(const SdarGenerateOptions& opt, const std::vector<decode::TokenChoice>& picks, int n) {
  const std::vector<float> conf = decode::confidences(picks);
  std::vector<float> entropy;
  for (const auto& p : picks) entropy.push_back(p.entropy);
  switch (opt.strategy) {
    case SdarStrategy::kSequential: {
      std::vector<int> first;
      for (int i = 0; i < std::min(n, int(picks.size())); ++i) first.push_back(i);
      return first;
    }
    case SdarStrategy::kLowConfidenceStatic: return decode::top_k_indices(conf, n);
    case SdarStrategy::kLowConfidenceDynamic: return decode::dynamic_select(conf, n, opt.confidence_threshold);
    case SdarStrategy::kEntropyBounded: return decode::entropy_bounded_select(entropy, opt.eb_threshold);
  }
  return {};
}

}  // namespace

std::vector<int32_t> sdar_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                   const SdarGenerateOptions& opt, const StepCallback& on_step) {
  const std::string name = "sdar_generate";
  check(opt.mask_id >= 0, name + ": no mask id");
  check(opt.gen_length > 0 && opt.block_length > 0 && opt.denoising_steps > 0,
        name + ": gen_length, block_length and denoising_steps must be positive");
  check(opt.temperature >= 0, name + ": temperature must not be negative");
  check(bool(src.score_cached), name + ": needs a logit source with a KV cache (score_cached)");
  decode::require_block_attention(src, opt.block_length, name);
  const int P = int(prompt.size()), B = opt.block_length, V = src.vocab;
  const int n_blocks = (P + opt.gen_length + B - 1) / B;
  std::vector<int32_t> x(size_t(n_blocks) * size_t(B), opt.mask_id);
  std::copy(prompt.begin(), prompt.end(), x.begin());
  const std::vector<int> sched = decode::llada_num_transfer_tokens(B, opt.denoising_steps);
  decode::Rng rng(opt.seed);
  const decode::ChoiceOptions choice{opt.temperature, opt.top_p, opt.top_k};
  std::vector<float> logits;
  const int prefill = (P / B) * B;
  if (prefill > 0) src.score_cached(x, CachedQuery{0, prefill, {}, true, {}}, logits);
  int step_count = 0;
  for (int blk = P / B; blk < n_blocks; ++blk) {
    const int begin = blk * B, end = begin + B;
    std::vector<std::pair<int32_t, int32_t>> prefix;
    if (begin > 0) prefix.emplace_back(0, begin);
    for (int step = 0;; ++step) {
      const std::vector<int32_t> masked = decode::masked_slots(x, begin, end, opt.mask_id);
      if (masked.empty()) {
        src.score_cached(x, CachedQuery{begin, end, prefix, true, {}}, logits);
        break;
      }
      src.score_cached(x, CachedQuery{begin, end, prefix, false, masked}, logits);
      const std::vector<decode::TokenChoice> picks = decode::choose_tokens(logits, masked.size(), V, choice, rng);
      // Past the schedule (a strategy that committed less than it): everything left.
      const int n = step < int(sched.size()) ? sched[size_t(step)] : int(masked.size());
      decode::commit_chosen(&x, masked, picks, sdar_select(opt, picks, n),
                            StepEvent{.step = step_count++, .prompt_length = P, .mask_id = opt.mask_id}, on_step);
    }
    bool stop = false;
    for (int32_t id : opt.stop_ids) stop = stop || std::find(x.begin() + P, x.begin() + end, id) != x.begin() + end;
    if (stop) break;
  }
  return x;
}

}  // namespace unmask
