#include "decode/block_diffusion.h"

#include <algorithm>
#include <cmath>

#include "decode/commit.h"
#include "decode/scoring.h"
#include "unmask/error.h"

namespace unmask::decode {

TokenChoice choose_token(const float* logits, int vocab, const ChoiceOptions& opt, Rng& rng,
                         std::vector<float>& scratch) {
  scratch.assign(logits, logits + vocab);
  if (opt.temperature > 0)
    for (float& l : scratch) l = float(double(l) / opt.temperature);
  if (opt.top_k > 0) top_k_filter(scratch.data(), vocab, opt.top_k);
  if (opt.top_p < 1.0) top_p_filter(scratch.data(), vocab, opt.top_p);
  std::vector<float> probs(static_cast<size_t>(vocab));
  softmax_f32(scratch.data(), vocab, probs.data());
  TokenChoice c;
  c.token = opt.temperature > 0 ? sample_categorical(probs.data(), vocab, rng) : argmax_first(probs.data(), vocab);
  c.prob = probs[size_t(c.token)];
  double h = 0;
  for (float p : probs)
    if (p > 0) h -= double(p) * std::log(double(p));
  c.entropy = float(h);
  return c;
}

std::vector<TokenChoice> choose_tokens(const std::vector<float>& logits, size_t rows, int vocab,
                                       const ChoiceOptions& opt, Rng& rng) {
  std::vector<TokenChoice> picks;
  std::vector<float> scratch;
  for (size_t i = 0; i < rows; ++i) picks.push_back(choose_token(logits.data() + i * size_t(vocab), vocab, opt, rng, scratch));
  return picks;
}

std::vector<float> confidences(const std::vector<TokenChoice>& picks) {
  std::vector<float> conf;
  for (const TokenChoice& p : picks) conf.push_back(p.prob);
  return conf;
}

std::vector<int32_t> masked_slots(const std::vector<int32_t>& x, int lo, int hi, int32_t mask_id) {
  std::vector<int32_t> slots;
  for (int s = lo; s < hi; ++s)
    if (x[size_t(s)] == mask_id) slots.push_back(s);
  return slots;
}

void commit_chosen(std::vector<int32_t>* x, const std::vector<int32_t>& slots, const std::vector<TokenChoice>& picks,
                   const std::vector<int>& chosen, StepEvent ev, const StepCallback& on_step) {
  for (int i : chosen) {
    (*x)[size_t(slots[size_t(i)])] = picks[size_t(i)].token;
    ev.committed.push_back(slots[size_t(i)]);
  }
  ev.canvas = x;
  if (!on_step) return;
  ev.masked = masked_slots(*x, 0, int(x->size()), ev.mask_id);
  on_step(ev);
}

std::vector<int> dynamic_select(const std::vector<float>& conf, int n, double threshold) {
  std::vector<int> above;
  for (size_t i = 0; i < conf.size(); ++i)
    if (double(conf[i]) > threshold) above.push_back(int(i));
  if (int(above.size()) >= n) return above;
  return top_k_indices(conf, n);
}

std::vector<int> entropy_bounded_select(const std::vector<float>& entropy, double bound) {
  std::vector<float> neg(entropy.size());
  for (size_t i = 0; i < entropy.size(); ++i) neg[i] = -entropy[i];
  const std::vector<int> order = top_k_indices(neg, int(neg.size()));  // ascending entropy
  std::vector<int> keep;
  double sum = 0;
  for (int i : order) {
    sum += double(entropy[size_t(i)]);
    if (!keep.empty() && !(sum < bound)) break;
    keep.push_back(i);
  }
  return keep;
}

std::vector<int> threshold_or_best_select(const std::vector<float>& conf, double threshold) {
  std::vector<int> keep;
  if (conf.empty()) return keep;
  const int best = int(std::max_element(conf.begin(), conf.end()) - conf.begin());
  for (size_t i = 0; i < conf.size(); ++i)
    if (int(i) == best || double(conf[i]) > threshold) keep.push_back(int(i));
  return keep;
}

void require_block_attention(const LogitSource& src, int block, const std::string& decoder) {
  if (src.attention_block != block)
    throw Error(decoder + ": the logit source runs attention_block " + std::to_string(src.attention_block) +
                "; this decoder needs block-causal attention with its block length " + std::to_string(block));
}

}  // namespace unmask::decode
