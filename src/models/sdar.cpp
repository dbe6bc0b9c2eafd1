// SDAR (SDARForCausalLM, Qwen3 names): per-head q_norm/k_norm before RoPE, no
// attention bias, block-causal attention with config `block_size` (blocks aligned to
// position 0), logits unshifted (row p scores slot p).
#include "models/registry.h"
#include "unmask/error.h"

namespace unmask {

namespace {

void read_sdar_config(const JsonFields& c, ModelConfig& m) {
  read_hf_config(c, m);
  if (m.ffn <= 0) throw Error(c.file() + ": field 'intermediate_size' is missing");
  if (c.boolean_or("attention_bias", false)) throw Error(c.file() + ": field 'attention_bias' = true is not supported for SDAR");
  if (c.boolean_or("use_sliding_window", false)) throw Error(c.file() + ": sliding-window attention is not supported");
  m.qk_norm = true;
  m.logit_shift = 0;
  m.attention_block = c.int32("block_size");
  if (m.attention_block <= 0) throw Error(c.file() + ": field 'block_size' must be positive");
}

}  // namespace

const FamilyBinding& sdar_family() {
  static const FamilyBinding f{"sdar", {"SDARForCausalLM"}, {"sdar"}, read_sdar_config, bind_hf_dense_model};
  return f;
}

}  // namespace unmask
