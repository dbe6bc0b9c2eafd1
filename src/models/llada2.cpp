// LLaDA2.0 (LLaDA2MoeModelLM, model_type llada2_moe; BailingMoeV2 layout):
// fused `attention.query_key_value` [(H + 2 KV)·hd, hidden] split at bind time into
// views (rows: all Q heads, then K, then V), per-head query/key RMSNorm before RoPE,
// partial RoPE (partial_rotary_factor), first_k_dense_replace dense layers, then MoE
// layers: sigmoid router with expert_bias (selection only), grouped top-k, weights
// renormalised × routed_scaling_factor, plus shared experts. Logits unshifted.
// Attention: the model itself is bidirectional without a mask; its generate() always
// passes a block-causal mask of block_length (default 32), which is what
// ModelConfig::attention_block records (callers pass the decoder's block length).
#include <cmath>

#include "models/registry.h"
#include "unmask/error.h"

namespace unmask {

namespace {

void require_false(const JsonFields& c, const char* key) {
  if (c.boolean_or(key, false)) throw Error(c.file() + ": field '" + key + "' = true is not supported for LLaDA2");
}

void read_llada2_config(const JsonFields& c, ModelConfig& m) {
  read_hf_config(c, m);
  require_false(c, "use_qkv_bias");
  require_false(c, "use_bias");
  require_false(c, "norm_head");
  require_false(c, "use_sliding_window");
  const std::string score = c.string_or("score_function", "sigmoid");
  if (score != "sigmoid") throw Error(c.file() + ": field 'score_function' = '" + score + "' is not supported (sigmoid)");
  m.qk_norm = c.boolean_or("use_qk_norm", true);
  m.rotary_dim = c.has("rotary_dim") ? c.int32("rotary_dim")
                                     : int(std::lround(double(m.head_dim) * c.number_or("partial_rotary_factor", 1.0)));
  m.logit_shift = 0;
  m.attention_block = 32;
  MoeConfig& moe = m.moe;
  read_hf_expert_counts(c, "moe_intermediate_size", moe);
  moe.shared_ffn = moe.expert_ffn * c.int32_or("num_shared_experts", 0);
  moe.first_dense_layers = c.int32_or("first_k_dense_replace", 0);
  moe.score = RouterScore::kSigmoid;
  moe.expert_bias = c.boolean_or("moe_router_enable_expert_bias", true);
  moe.n_group = c.int32_or("n_group", 1);
  moe.topk_group = c.int32_or("topk_group", moe.n_group);
  moe.renormalize = c.boolean_or("norm_topk_prob", true);
  moe.scaling = c.number_or("routed_scaling_factor", 1.0);
  if (m.ffn <= 0 && moe.first_dense_layers > 0) throw Error(c.file() + ": field 'intermediate_size' is missing");
  if (m.ffn <= 0) m.ffn = moe.expert_ffn;
}

void bind_llada2_weights(WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  const int64_t hd = c.head_dim, q_out = int64_t(c.n_heads) * hd, kv_out = int64_t(c.n_kv_heads) * hd;
  w.layers.resize(size_t(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    LayerWeights& L = w.layers[size_t(i)];
    L.attn_norm = b.vector(l + "input_layernorm.weight", c.hidden);
    const TensorView qkv = b.matrix(l + "attention.query_key_value.weight", q_out + 2 * kv_out, c.hidden);
    L.wq = row_slice(qkv, 0, q_out);
    L.wk = row_slice(qkv, q_out, kv_out);
    L.wv = row_slice(qkv, q_out + kv_out, kv_out);
    if (c.qk_norm) {
      L.q_norm = b.vector(l + "attention.query_layernorm.weight", hd);
      L.k_norm = b.vector(l + "attention.key_layernorm.weight", hd);
    }
    L.wo = b.matrix(l + "attention.dense.weight", c.hidden, q_out);
    L.ffn_norm = b.vector(l + "post_attention_layernorm.weight", c.hidden);
    if (c.moe.is_moe_layer(i)) bind_hf_moe(b, c, l + "mlp.", "shared_experts.", L);
    else bind_hf_dense_mlp(b, c, l + "mlp.", L);
  }
  bind_hf_ends(b, c, "model.word_embeddings.weight", w);
}

}  // namespace

const FamilyBinding& llada2_family() {
  static const FamilyBinding f{"llada2", {"LLaDA2MoeModelLM"}, {"llada2_moe"}, read_llada2_config, bind_llada2_weights};
  return f;
}

}  // namespace unmask
