// Fast-dLLM v2 (Fast_dLLM_QwenForCausalLM, Qwen2.5 names): q/k/v bias, block-causal
// attention with config `bd_size` (blocks aligned to position 0), logits AR-style
// (slot p scored by row p-1, logit_shift 1).
#include "models/registry.h"
#include "unmask/error.h"

namespace unmask {

namespace {

void read_fast_dllm_v2_config(const JsonFields& c, ModelConfig& m) {
  read_hf_config(c, m);
  if (m.ffn <= 0) throw Error(c.file() + ": field 'intermediate_size' is missing");
  if (c.boolean_or("use_sliding_window", false)) throw Error(c.file() + ": sliding-window attention is not supported");
  m.qkv_bias = true;
  m.logit_shift = 1;
  m.attention_block = c.int32_or("bd_size", 32);
  if (m.attention_block <= 0) throw Error(c.file() + ": field 'bd_size' must be positive");
}

}  // namespace

const FamilyBinding& fast_dllm_v2_family() {
  static const FamilyBinding f{"fast_dllm_v2", {"Fast_dLLM_QwenForCausalLM"}, {"Fast_dLLM_Qwen"},
                               read_fast_dllm_v2_config, bind_hf_dense_model};
  return f;
}

}  // namespace unmask
