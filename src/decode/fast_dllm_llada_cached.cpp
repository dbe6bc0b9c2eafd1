// NVlabs/Fast-dLLM llada/generate.py::generate_with_prefix_cache and
// ::generate_with_dual_cache, call for call.
//
// Per block (canvas length L, block [start, end)):
//   1. one full forward over [0, L) that stores every row's K/V in the source's cache;
//      it scores the masked slots before `end` (leftovers of earlier blocks included,
//      as upstream's mask_index spans the canvas) and commits step 0 of the schedule
//      (or the threshold / factor rule);
//   2. cached calls, at least one even when step 1 already finished the block
//      (upstream checks the block only after each call: the fixtures' "8, 0" pattern):
//        prefix: rows [start, L) recomputed, [0, start) read from the cache;
//        dual:   rows [start, end) recomputed and written back, [0, start) and [end, L)
//                read from the cache — the suffix stays as the block-start forward left it;
//      both score only the block's masked slots (upstream's mask_index covers the
//      window with everything after the block cleared, so earlier leftovers are out);
//      call i (from 1) commits schedule[i] or the threshold / factor rule;
//   until the block holds no mask.
// Upstream stores K before RoPE and re-rotates it at the same positions each call; the
// cache here holds K after RoPE at the same absolute positions, the same numbers.
#include "decode/canvas.h"
#include "decode/fast_dllm_commit.h"
#include "decode/schedule.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask::decode {

std::vector<int32_t> fast_dllm_llada_cached_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                                     const FastDllmLladaOptions& opt, const StepCallback& on_step) {
  const std::string name = std::string("fast_dllm_llada_generate(") +
                           (opt.cache == CachePolicy::kDual ? "dual" : "prefix") + " cache)";
  const auto layout = llada_block_layout(opt.gen_length, opt.block_length, opt.steps, name);
  std::vector<int32_t> x = init_canvas(src, prompt, opt.gen_length, opt.mask_id, name);
  check_fast_dllm_options(opt, name);
  check(bool(src.score_cached), name + ": the logit source keeps no KV cache (no score_cached)");
  const int P = int(prompt.size()), L = int(x.size());
  const int32_t mask = opt.mask_id;
  const bool adaptive = opt.threshold || opt.factor;
  const int total_steps = adaptive ? 0 : opt.steps;

  Rng rng(opt.seed);
  std::vector<float> logits;
  int step = 0;
  for (int b = 0; b < layout.num_blocks; ++b) {
    const int start = P + b * opt.block_length, end = start + opt.block_length;
    const std::vector<int> schedule =
        llada_num_transfer_tokens(count_masks(x, mask, start, end), layout.steps_per_block);

    CachedQuery full;
    full.query_begin = 0;
    full.query_end = L;
    full.store_kv = true;
    full.slots = masked_slots(x, mask, end);
    query_logits_cached(src, x, full, logits, name);
    FastDllmCommit c = fast_dllm_commit(opt, src.vocab, full.slots, logits, adaptive ? 0 : schedule[0], rng, x);
    emit_step(on_step, step++, total_steps, x, std::move(c.committed), P, mask);

    for (int i = 1;; ++i) {
      if (!adaptive)
        check(i < layout.steps_per_block,
              name + ": block " + std::to_string(b) + " needs a cached call after its " +
                  std::to_string(layout.steps_per_block) +
                  " scheduled steps (the block-start forward finished it, or the argmax was the mask id; "
                  "the reference fails with IndexError here)");
      check(i < kMaxCallsPerBlockSlot * opt.block_length,
            name + ": block " + std::to_string(b) + " made no progress in " + std::to_string(i) + " calls");
      CachedQuery q = fast_dllm_block_query(opt.cache, start, end, L);
      q.slots = masked_slots_between(x, mask, start, end);
      query_logits_cached(src, x, q, logits, name);
      c = fast_dllm_commit(opt, src.vocab, q.slots, logits, adaptive ? 0 : schedule[size_t(i)], rng, x);
      emit_step(on_step, step++, total_steps, x, std::move(c.committed), P, mask);
      if (count_masks(x, mask, start, end) == 0) break;
      // Same canvas and same cache next time: upstream would repeat this call forever.
      if (adaptive && !c.changed && opt.temperature == 0)
        throw Error(name + ": step " + std::to_string(step - 1) + " committed only the mask id at temperature 0; "
                    "the reference would repeat it forever");
    }
  }
  return x;
}

}  // namespace unmask::decode
