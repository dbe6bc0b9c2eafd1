// decode/block_diffusion.h — pieces shared by the block-causal family decoders
// (llada2_generate, sdar_generate, fast_dllm_v2_generate): the token choice and the
// commit rules, each testable on crafted numbers. Caller-owned buffers; nothing retained.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "decode/sampling.h"
#include "unmask/decode.h"

namespace unmask::decode {

struct TokenChoice {
  int32_t token = 0;
  float prob = 0;     // probability of `token` under the filtered softmax
  float entropy = 0;  // -Σ p log p of that softmax (SDAR entropy_bounded)
};
struct ChoiceOptions {
  double temperature = 0.0, top_p = 1.0;
  int top_k = 0;
};
// One row of `vocab` logits: logits / T (T > 0), top-k, top-p, softmax (f32); argmax at
// T = 0, else a draw from `rng`. `scratch` is resized as needed.
TokenChoice choose_token(const float* logits, int vocab, const ChoiceOptions& opt, Rng& rng, std::vector<float>& scratch);

// One TokenChoice per row of logits [rows][vocab].
std::vector<TokenChoice> choose_tokens(const std::vector<float>& logits, size_t rows, int vocab,
                                       const ChoiceOptions& opt, Rng& rng);
std::vector<float> confidences(const std::vector<TokenChoice>& picks);  // each pick's prob
// The slots of x[lo, hi) holding mask_id, ascending.
std::vector<int32_t> masked_slots(const std::vector<int32_t>& x, int lo, int hi, int32_t mask_id);
// Writes picks[i].token at slots[i] for each i of `chosen` into *x, then reports the step
// (ev.canvas, ev.committed and ev.masked filled here) to on_step when set.
void commit_chosen(std::vector<int32_t>* x, const std::vector<int32_t>& slots, const std::vector<TokenChoice>& picks,
                   const std::vector<int>& chosen, StepEvent ev, const StepCallback& on_step);

// LLaDA2 / SDAR low_confidence_dynamic: every candidate with conf > threshold (strict) if
// there are at least n of them, else the top min(n, size) by conf (ties: lower index).
std::vector<int> dynamic_select(const std::vector<float>& conf, int n, double threshold);
// SDAR entropy_bounded: candidates by ascending entropy while the running sum stays
// < bound; at least one.
std::vector<int> entropy_bounded_select(const std::vector<float>& entropy, double bound);
// Fast-dLLM v2: every candidate with conf > threshold (strict) plus the most confident
// one (the first on ties), in candidate order.
std::vector<int> threshold_or_best_select(const std::vector<float>& conf, double threshold);

// Throws Error unless src runs block-causal attention with blocks of `block`.
void require_block_attention(const LogitSource& src, int block, const std::string& decoder);

}  // namespace unmask::decode
