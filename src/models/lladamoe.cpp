// LLaDA-MoE (LLaDAMoEModelLM, OLMoE-like; dInfer's configuration_lladamoe field names,
// HF Qwen-style tensor names): per-head q_norm/k_norm before RoPE, no attention bias,
// fully bidirectional, logits unshifted. Every layer in moe_layer_freq marked 1 is MoE:
// softmax over all experts, top-k, NO renormalisation (the reference hard-codes
// norm_topk_prob = False whatever the config says), no shared expert by default.
#include "models/registry.h"
#include "unmask/error.h"

namespace unmask {

namespace {

// moe_layer_freq: an int (1 = every layer) or a per-layer list; only "k dense layers,
// then MoE" patterns map onto MoeConfig::first_dense_layers.
int first_dense_layers(const JsonFields& c, int n_layers) {
  if (!c.has("moe_layer_freq")) return 0;
  const auto& f = c.raw().at("moe_layer_freq");
  if (f.is_number_integer()) {
    if (f.get<int64_t>() != 1) throw Error(c.file() + ": field 'moe_layer_freq' = " + f.dump() + " is not supported (use 1)");
    return 0;
  }
  if (!f.is_array() || int(f.size()) != n_layers)
    throw Error(c.file() + ": field 'moe_layer_freq' must be 1 or a list of num_hidden_layers 0/1 values");
  int dense = 0;
  while (dense < n_layers && f[size_t(dense)] == 0) ++dense;
  for (int i = dense; i < n_layers; ++i)
    if (f[size_t(i)] != 1)
      throw Error(c.file() + ": field 'moe_layer_freq' = " + f.dump() + ": only dense layers first, then MoE, is supported");
  return dense;
}

void read_lladamoe_config(const JsonFields& c, ModelConfig& m) {
  read_hf_config(c, m);
  if (c.boolean_or("attention_bias", false)) throw Error(c.file() + ": field 'attention_bias' = true is not supported");
  if (c.has("clip_qkv")) throw Error(c.file() + ": field 'clip_qkv' is set; not supported");
  if (c.boolean_or("moe_router_enable_expert_bias", false))
    throw Error(c.file() + ": field 'moe_router_enable_expert_bias' = true is not supported for LLaDA-MoE");
  const std::string score = c.string_or("moe_router_score_function", "softmax");
  if (score != "softmax") throw Error(c.file() + ": field 'moe_router_score_function' = '" + score + "' is not supported");
  if (c.has("router_num_group") && c.int32("router_num_group") > 1)
    throw Error(c.file() + ": field 'router_num_group' > 1 is not supported for LLaDA-MoE");
  if (c.number_or("routed_scaling_factor", 1.0) != 1.0)
    throw Error(c.file() + ": field 'routed_scaling_factor' != 1 is not supported for LLaDA-MoE");
  m.qk_norm = c.boolean_or("qk_layernorm", true);
  const double partial = c.number_or("partial_rotary_factor", 1.0);
  m.rotary_dim = int(double(m.head_dim) * partial);
  m.logit_shift = 0;
  m.attention_block = 0;
  MoeConfig& moe = m.moe;
  read_hf_expert_counts(c, "expert_intermediate_size", moe);
  moe.shared_ffn = c.int32_or("shared_expert_intermediate_size", 0);
  moe.first_dense_layers = first_dense_layers(c, m.n_layers);
  moe.score = RouterScore::kSoftmax;
  moe.renormalize = false;
  m.ffn = c.int32_or("dense_intermediate_size", m.ffn > 0 ? m.ffn : moe.expert_ffn);
}

void bind_lladamoe_weights(WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  bind_hf_layers(b, c, w, "shared_expert.");
}

}  // namespace

const FamilyBinding& lladamoe_family() {
  static const FamilyBinding f{"lladamoe", {"LLaDAMoEModelLM", "LLaDAMoEModel"}, {"lladamoe", "llada_moe"},
                               read_lladamoe_config, bind_lladamoe_weights};
  return f;
}

}  // namespace unmask
