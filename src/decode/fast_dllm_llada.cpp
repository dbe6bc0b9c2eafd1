// NVlabs/Fast-dLLM llada/generate.py::generate (no KV cache), step for step.
//
// Differences from ML-GSAI's generate (llada_generate.cpp): no CFG and no EOS options;
// the confidence softmax runs in float64; each block loops until it holds no mask:
//   - threshold none: step i commits schedule[i] slots (an i past the schedule is an
//     IndexError upstream: we throw);
//   - threshold T: k = #masked slots up to the block end (leftovers of earlier blocks
//     included); of the top k the best is always committed, the others unless their
//     confidence < T;
//   - factor f (takes precedence): get_transfer_index_dynamic's count (commit.h).
// As upstream, x0 may be the mask id ("commits" a mask: the slot stays masked).
// opt.cache kPrefix / kDual hand over to fast_dllm_llada_cached.cpp.
#include "decode/canvas.h"
#include "decode/fast_dllm_commit.h"
#include "decode/schedule.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {

std::vector<int32_t> fast_dllm_llada_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                              const FastDllmLladaOptions& opt, const StepCallback& on_step) {
  if (opt.cache != CachePolicy::kNone) return decode::fast_dllm_llada_cached_generate(src, prompt, opt, on_step);
  const std::string name = "fast_dllm_llada_generate";
  const auto layout = decode::llada_block_layout(opt.gen_length, opt.block_length, opt.steps, name);
  std::vector<int32_t> x = decode::init_canvas(src, prompt, opt.gen_length, opt.mask_id, name);
  decode::check_fast_dllm_options(opt, name);
  const int P = int(prompt.size());
  const int32_t mask = opt.mask_id;
  const bool adaptive = opt.threshold || opt.factor;

  decode::Rng rng(opt.seed);
  std::vector<float> logits;
  int step = 0;
  for (int b = 0; b < layout.num_blocks; ++b) {
    const int block_start = P + b * opt.block_length, block_end = block_start + opt.block_length;
    const std::vector<int> schedule = decode::llada_num_transfer_tokens(
        decode::count_masks(x, mask, block_start, block_end), layout.steps_per_block);
    for (int i = 0; decode::count_masks(x, mask, block_start, block_end) > 0; ++i, ++step) {
      if (!adaptive)
        check(i < layout.steps_per_block,
              name + ": block " + std::to_string(b) + " still holds a mask after its " +
                  std::to_string(layout.steps_per_block) + " scheduled steps (the argmax was the mask id; "
                  "the reference fails with IndexError here)");
      check(i < decode::kMaxCallsPerBlockSlot * opt.block_length,
            name + ": block " + std::to_string(b) + " made no progress in " + std::to_string(i) + " calls");
      const std::vector<int32_t> slots = decode::masked_slots(x, mask, block_end);
      decode::query_logits(src, {x}, slots, logits);
      const int scheduled = adaptive ? 0 : schedule[size_t(i)];
      decode::FastDllmCommit c = decode::fast_dllm_commit(opt, src.vocab, slots, logits, scheduled, rng, x);
      decode::emit_step(on_step, step, adaptive ? 0 : opt.steps, x, std::move(c.committed), P, mask);
      if (adaptive && !c.changed && opt.temperature == 0 && decode::count_masks(x, mask, block_start, block_end) > 0)
        throw Error(name + ": step " + std::to_string(step) + " committed only the mask id at temperature 0; "
                    "the reference would repeat it forever");
    }
  }
  return x;
}

bool parse_cache_policy(const std::string& s, CachePolicy* out) {
  if (s == "none") *out = CachePolicy::kNone;
  else if (s == "prefix") *out = CachePolicy::kPrefix;
  else if (s == "dual") *out = CachePolicy::kDual;
  else return false;
  return true;
}

}  // namespace unmask
