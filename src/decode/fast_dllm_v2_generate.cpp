// HF Fast_dLLM_QwenForCausalLM.generate, Fast-dLLM v2 (see unmask/decode.h).
//
//   x = prompt; prefill rows [0, (P / B)·B) storing K/V (+ the AR token when B | P)
//   per block: x_t = x | masks up to the next multiple of B; block [e - B, e)
//     per sub-block [s, s + S) while it has a mask (and no finished stop token):
//       call on the block (or, block cache, on the sub-block once slot s is known),
//       logits shifted within the window; commit p > threshold + the most confident
//     finished block: one call storing its K/V; its last row's argmax is appended
//   output cut after the stop token
#include <algorithm>

#include "decode/block_diffusion.h"
#include "decode/scoring.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {

namespace {

// The stop token is present after `from` with no mask before it.
bool finished(const std::vector<int32_t>& x, int from, const FastDllmV2Options& opt) {
  const auto stop = std::find(x.begin() + from, x.end(), opt.stop_token);
  return opt.stop_token >= 0 && stop != x.end() && std::find(x.begin() + from, stop, opt.mask_id) == stop;
}

}  // namespace

std::vector<int32_t> fast_dllm_v2_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                           const FastDllmV2Options& opt, const StepCallback& on_step) {
  const std::string name = "fast_dllm_v2_generate";
  check(opt.mask_id >= 0, name + ": no mask id");
  check(opt.max_new_tokens > 0 && opt.block_size > 0 && opt.small_block_size > 0 &&
            opt.block_size % opt.small_block_size == 0,
        name + ": max_new_tokens, block_size, small_block_size must be positive, block_size a multiple of small_block_size");
  check(opt.temperature >= 0, name + ": temperature must not be negative");
  check(!prompt.empty(), name + ": empty prompt");
  check(bool(src.score_cached), name + ": needs a logit source with a KV cache (score_cached)");
  decode::require_block_attention(src, opt.block_size, name);
  const int P = int(prompt.size()), B = opt.block_size, S = opt.small_block_size, V = src.vocab;
  decode::Rng rng(opt.seed);
  // At temperature 0 the reference takes the argmax and its plain softmax probability
  // (sample_with_top_p applies top_p only when sampling).
  const decode::ChoiceOptions choice{opt.temperature, opt.temperature > 0 ? opt.top_p : 1.0, 0};
  std::vector<float> logits;
  std::vector<int32_t> x = prompt;
  if (P >= B) {
    CachedQuery q{0, (P / B) * B, {}, true, {}};
    q.next_token_row = P % B == 0;
    src.score_cached(x, q, logits);
    if (q.next_token_row) x.push_back(decode::argmax_first(logits.data(), V));
  }
  int step_count = 0;
  for (int blk = 0; blk < opt.max_new_tokens / B; ++blk) {
    if (opt.stop_token >= 0 && std::find(x.begin() + P, x.end(), opt.stop_token) != x.end()) break;
    const int block_prompt = int(x.size());
    x.resize(size_t(block_prompt + B - block_prompt % B), opt.mask_id);
    const int end = int(x.size()), begin = end - B;
    std::vector<std::pair<int32_t, int32_t>> prefix;
    if (begin > 0) prefix.emplace_back(0, begin);
    bool block_cached = false;
    while (!finished(x, block_prompt, opt)) {
      if (decode::masked_slots(x, begin, end, opt.mask_id).empty()) {
        CachedQuery q{begin, end, prefix, true, {}};
        q.next_token_row = true;
        src.score_cached(x, q, logits);
        x.push_back(decode::argmax_first(logits.data(), V));
        break;
      }
      for (int sb = begin; sb < end; sb += S) {
        for (;;) {
          const std::vector<int32_t> masked = decode::masked_slots(x, sb, sb + S, opt.mask_id);
          if (masked.empty() || finished(x, block_prompt, opt)) break;
          CachedQuery q{begin, end, prefix, opt.use_block_cache, masked};
          if (opt.use_block_cache && block_cached && x[size_t(sb)] != opt.mask_id) {
            q.query_begin = sb;
            q.query_end = sb + S;
            q.cached_spans.clear();
            if (sb > 0) q.cached_spans.emplace_back(0, sb);
            if (sb + S < end) q.cached_spans.emplace_back(sb + S, end);
          }
          block_cached = block_cached || opt.use_block_cache;
          src.score_cached(x, q, logits);
          const std::vector<decode::TokenChoice> picks = decode::choose_tokens(logits, masked.size(), V, choice, rng);
          decode::commit_chosen(&x, masked, picks, decode::threshold_or_best_select(decode::confidences(picks), opt.threshold),
                                StepEvent{.step = step_count++, .prompt_length = P, .mask_id = opt.mask_id}, on_step);
        }
      }
    }
  }
  const auto stop = opt.stop_token >= 0 ? std::find(x.begin() + P, x.end(), opt.stop_token) : x.end();
  if (stop != x.end()) x.erase(stop + 1, x.end());
  return x;
}

}  // namespace unmask
