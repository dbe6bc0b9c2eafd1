// NVlabs/Fast-dLLM dream/model/generation_utils_block.py (DreamGenerationMixin._sample
// with block_length and dual_cache), call for call.
//
// Canvas [prompt | max_new_tokens masks], blocks of block_length, steps_per_block =
// steps / num_blocks. Per block [start, end) of a canvas of length L:
//   1. full forward over [0, L) that stores every row's K/V; logits shifted over the
//      whole canvas (slot p from row p - 1); sample_tokens on slot `start` and write its
//      x0 unconditionally (upstream writes x0[:, start] whatever its confidence);
//   2. cached calls — prefix: rows [start, L), [0, start) from the cache; dual: rows
//      [start, end) written back, [0, start) and [end, L) from the cache — with logits
//      shifted within that window (its first slot is scored by its own row: the
//      LogitSource's CachedQuery rule); only the block's masked slots can commit:
//        confidence_threshold: p[x0]; k = #masks in the block; top-1 always, the rest
//          of the top k unless p < threshold (float32 compare);
//        otherwise (upstream ignores alg here): negative entropy; loop index i from 1,
//          ts = linspace(1, eps, steps_per_block + 1), k = int(n (1 - ts[i+1] / ts[i]))
//          or all n at i = steps_per_block - 1; when i reaches steps_per_block the
//          call has already been made: its result is dropped and the block ends;
//      the block is checked only after each call, so at least one cached call follows
//      step 1 even when it finished the block.
// As upstream, x0 may be the mask id (the slot stays masked).
#include "decode/canvas.h"
#include "decode/commit.h"
#include "decode/dream_sampling.h"
#include "decode/schedule.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {

std::vector<int32_t> dream_block_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                          const DreamBlockOptions& opt, const StepCallback& on_step) {
  const std::string name = "dream_block_generate";
  const DreamGenerateOptions& d = opt.dream;
  decode::check_dream_options(d);
  check(opt.cache != CachePolicy::kNone,
        name + ": generation_utils_block.py always caches (prefix or dual); use dream_generate for no cache");
  const auto layout = decode::llada_block_layout(d.max_new_tokens, opt.block_length, d.steps, name);
  std::vector<int32_t> x = decode::init_canvas(src, prompt, d.max_new_tokens, d.mask_id, name);
  check(bool(src.score_cached), name + ": the logit source keeps no KV cache (no score_cached)");
  const int V = src.vocab, P = int(prompt.size()), L = int(x.size()), spb = layout.steps_per_block;
  const int32_t mask = d.mask_id;
  const bool by_threshold = d.alg == DreamAlg::kConfidenceThreshold;
  const decode::DreamConfidence kind = by_threshold ? decode::DreamConfidence::kProb
                                                    : decode::DreamConfidence::kNegEntropy;
  const std::vector<float> ts = decode::dream_timesteps(spb, d.eps);
  const float threshold = float(d.threshold);  // float32 tensor < Python float compares in float32
  const int total_steps = by_threshold ? 0 : d.steps;

  decode::Rng rng(d.seed);
  std::vector<float> logits, probs(static_cast<size_t>(V));
  int step = 0;
  for (int b = 0; b < layout.num_blocks; ++b) {
    const int start = P + b * opt.block_length, end = start + opt.block_length;

    CachedQuery full;
    full.query_begin = 0;
    full.query_end = L;
    full.store_kv = true;
    full.slots = {start};
    decode::query_logits_cached(src, x, full, logits, name);
    x[size_t(start)] = decode::dream_sample_row(logits.data(), V, d, decode::DreamConfidence::kProb, rng,
                                                probs.data()).x0;
    decode::emit_step(on_step, step++, total_steps, x, {start}, P, mask);

    for (int i = 1, calls = 1;; ++calls) {
      check(calls < decode::kMaxCallsPerBlockSlot * opt.block_length,
            name + ": block " + std::to_string(b) + " made no progress in " + std::to_string(calls) + " calls");
      CachedQuery q = decode::fast_dllm_block_query(opt.cache, start, end, L);
      q.slots = decode::masked_slots_between(x, mask, start, end);
      decode::query_logits_cached(src, x, q, logits, name);
      if (!by_threshold && i == spb) break;

      const size_t n = q.slots.size();
      std::vector<int32_t> x0(n);
      std::vector<float> conf(n);
      for (size_t j = 0; j < n; ++j) {
        const auto r = decode::dream_sample_row(logits.data() + j * size_t(V), V, d, kind, rng, probs.data());
        x0[j] = r.x0;
        conf[j] = r.confidence;
      }
      std::vector<int> chosen;
      if (by_threshold) {
        chosen = decode::threshold_select(conf, int(n), [&](float c) { return c < threshold; });
      } else {
        const int k = decode::dream_transfer_count(int(n), ts[size_t(i)], ts[size_t(i) + 1], i >= spb - 1);
        chosen = decode::dream_choose(conf, k, d.alg_temp, rng);
        ++i;
      }
      bool changed = false;
      std::vector<int32_t> committed;
      for (int j : chosen) {
        int32_t& slot = x[size_t(q.slots[size_t(j)])];
        changed |= slot != x0[size_t(j)];
        slot = x0[size_t(j)];
        committed.push_back(q.slots[size_t(j)]);
      }
      decode::emit_step(on_step, step++, total_steps, x, std::move(committed), P, mask);
      if (decode::count_masks(x, mask, start, end) == 0) break;
      // Same canvas and same cache next time: upstream would repeat this call forever.
      if (by_threshold && !changed && d.temperature == 0)
        throw Error(name + ": step " + std::to_string(step - 1) + " committed only the mask id at temperature 0; "
                    "the reference would repeat it forever");
    }
  }
  return x;
}

}  // namespace unmask
