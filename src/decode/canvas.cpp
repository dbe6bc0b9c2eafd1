#include "decode/canvas.h"

#include <algorithm>

#include "unmask/error.h"

namespace unmask::decode {

std::vector<int32_t> init_canvas(const LogitSource& src, const std::vector<int32_t>& prompt, int gen_length,
                                 int32_t mask_id, const std::string& decoder) {
  check(src.vocab > 0, decoder + ": logit source has vocab " + std::to_string(src.vocab));
  check(bool(src.score), decoder + ": logit source has no score function");
  check(mask_id >= 0 && mask_id < src.vocab,
        decoder + ": mask_id " + std::to_string(mask_id) + " is not in [0, " + std::to_string(src.vocab) + ")");
  check(gen_length > 0, decoder + ": generation length " + std::to_string(gen_length) + " must be positive");
  for (size_t i = 0; i < prompt.size(); ++i)
    check(prompt[i] >= 0 && prompt[i] < src.vocab, decoder + ": prompt token " + std::to_string(prompt[i]) +
                                                        " at position " + std::to_string(i) + " is not in [0, " +
                                                        std::to_string(src.vocab) + ")");
  std::vector<int32_t> canvas(prompt);
  canvas.resize(prompt.size() + size_t(gen_length), mask_id);
  return canvas;
}

std::vector<int32_t> masked_slots(const std::vector<int32_t>& canvas, int32_t mask_id, int end) {
  std::vector<int32_t> out;
  for (int s = 0; s < end && s < int(canvas.size()); ++s)
    if (canvas[size_t(s)] == mask_id) out.push_back(s);
  return out;
}

std::vector<int32_t> masked_slots_between(const std::vector<int32_t>& canvas, int32_t mask_id, int begin, int end) {
  std::vector<int32_t> out;
  for (int s = std::max(begin, 0); s < end && s < int(canvas.size()); ++s)
    if (canvas[size_t(s)] == mask_id) out.push_back(s);
  return out;
}

int count_masks(const std::vector<int32_t>& canvas, int32_t mask_id, int begin, int end) {
  int n = 0;
  for (int s = begin; s < end; ++s) n += canvas[size_t(s)] == mask_id;
  return n;
}

void query_logits(const LogitSource& src, const std::vector<std::vector<int32_t>>& canvases,
                  const std::vector<int32_t>& slots, std::vector<float>& out) {
  src.score(canvases, slots, out);
  const size_t want = canvases.size() * slots.size() * size_t(src.vocab);
  check(out.size() == want, "logit source returned " + std::to_string(out.size()) + " floats, expected " +
                                std::to_string(want) + " (canvases x slots x vocab)");
}

void query_logits_cached(const LogitSource& src, const std::vector<int32_t>& canvas, const CachedQuery& query,
                         std::vector<float>& out, const std::string& decoder) {
  check(bool(src.score_cached), decoder + ": the logit source keeps no KV cache (no score_cached)");
  src.score_cached(canvas, query, out);
  const size_t want = query.slots.size() * size_t(src.vocab);
  check(out.size() == want, "logit source returned " + std::to_string(out.size()) + " floats for a cached query, expected " +
                                std::to_string(want) + " (slots x vocab)");
}

void emit_step(const StepCallback& on_step, int step, int total_steps, const std::vector<int32_t>& canvas,
               std::vector<int32_t> committed, int prompt_length, int32_t mask_id) {
  if (!on_step) return;
  StepEvent ev;
  ev.step = step;
  ev.total_steps = total_steps;
  ev.canvas = &canvas;
  ev.committed = std::move(committed);
  ev.masked = masked_slots(canvas, mask_id, int(canvas.size()));
  ev.prompt_length = prompt_length;
  ev.mask_id = mask_id;
  on_step(ev);
}

CachedQuery fast_dllm_block_query(CachePolicy cache, int start, int end, int L) {
  CachedQuery q;
  q.query_begin = start;
  q.query_end = cache == CachePolicy::kDual ? end : L;
  if (start > 0) q.cached_spans.emplace_back(0, start);
  if (cache == CachePolicy::kDual && end < L) q.cached_spans.emplace_back(end, L);
  q.store_kv = cache == CachePolicy::kDual;
  return q;
}

}  // namespace unmask::decode
