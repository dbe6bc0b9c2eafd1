// The block-causal families' paper decoders with model-card settings (unmask/family_decode.h).
#include <algorithm>

#include "unmask/error.h"
#include "unmask/family_decode.h"

namespace unmask {

std::vector<int32_t> family_reference_generate(const Model& model, const LogitSource& source,
                                               const std::vector<int32_t>& prompt, int gen_length,
                                               const FamilyDecodeOptions& options, const StepCallback& on_step) {
  const ModelConfig& c = model.config;
  const int block = c.attention_block;
  const auto set_token_choice = [&](auto& o) {  // llada2 / sdar: the same sampling fields
    o.temperature = options.temperature;
    o.top_p = options.top_p;
    o.top_k = options.top_k;
    o.mask_id = c.special.mask;
    o.seed = options.seed;
  };
  std::vector<int32_t> out;
  if (c.family == "llada2") {
    Llada2GenerateOptions o;
    set_token_choice(o);
    o.gen_length = gen_length;
    o.block_length = block;
    o.steps = options.steps.value_or(block);
    o.eos_id = c.special.eos;
    o.eos_early_stop = true;
    out = llada2_generate(source, prompt, o, on_step).output;
  } else if (c.family == "sdar") {
    SdarGenerateOptions o;
    set_token_choice(o);
    o.gen_length = gen_length;
    o.block_length = block;
    o.denoising_steps = options.steps.value_or(block);
    for (int32_t id : {c.special.eos, c.special.eot})
      if (id >= 0) o.stop_ids.push_back(id);
    out = sdar_generate(source, prompt, o, on_step);
  } else if (c.family == "fast_dllm_v2") {
    FastDllmV2Options o;
    // Its generate decodes max_new_tokens / block_size whole blocks: round up, then cut.
    o.max_new_tokens = (gen_length + block - 1) / block * block;
    o.block_size = block;
    o.small_block_size = std::min(8, block);
    o.threshold = 0.9;
    o.temperature = options.temperature;
    o.top_p = options.top_p;
    o.use_block_cache = true;
    o.mask_id = c.special.mask;
    o.stop_token = c.special.eos;
    o.seed = options.seed;
    out = fast_dllm_v2_generate(source, prompt, o, on_step);
  } else {
    throw Error("no reference decoder for the block-causal family '" + c.family + "'");
  }
  out.resize(std::min(out.size(), prompt.size() + size_t(gen_length)));
  return out;
}

}  // namespace unmask
