// Config reading and weight binding shared by the families that use Hugging Face
// Qwen2/Llama names (Dream, SDAR, Fast-dLLM v2, LLaDA-MoE, LLaDA2): see registry.h.
#include "models/registry.h"
#include "unmask/error.h"

namespace unmask {

void read_hf_config(const JsonFields& c, ModelConfig& m) {
  m.hidden = c.int32("hidden_size");
  m.n_heads = c.int32("num_attention_heads");
  m.n_layers = c.int32("num_hidden_layers");
  m.n_kv_heads = c.int32_or("num_key_value_heads", m.n_heads);
  m.ffn = c.int32_or("intermediate_size", 0);
  m.vocab = c.int32("vocab_size");
  m.rms_eps = float(c.number_or("rms_norm_eps", 1e-6));
  m.rope_theta = c.number_or("rope_theta", 10000.0);
  m.rope_precision = RopePrecision::kCastCosSin;
  m.max_context = c.integer_or("max_position_embeddings", 32768);
  m.tied_embeddings = c.boolean_or("tie_word_embeddings", false);
  if (c.has("rope_scaling")) throw Error(c.file() + ": field 'rope_scaling' is set; scaled RoPE is not supported yet");
  if (c.string_or("hidden_act", "silu") != "silu")
    throw Error(c.file() + ": field 'hidden_act' is '" + c.string_or("hidden_act", "") + "'; only 'silu' is supported");
  // Checked here, not only in validate_config: the division below needs it.
  if (m.n_heads <= 0)
    throw Error(c.file() + ": field 'num_attention_heads' must be positive, got " + std::to_string(m.n_heads));
  if (!c.has("head_dim") && m.hidden % m.n_heads != 0)
    throw Error(c.file() + ": hidden_size not divisible by num_attention_heads");
  m.head_dim = c.int32_or("head_dim", m.hidden / m.n_heads);
  auto& s = m.special;
  s.mask = c.int32_or("mask_token_id", -1);
  s.eos = int32_t(c.first_integer("eos_token_id").value_or(-1));
  s.pad = c.int32_or("pad_token_id", -1);
  s.bos = c.int32_or("bos_token_id", -1);
}

void bind_hf_attention(WeightBinder& b, const ModelConfig& c, const std::string& l, LayerWeights& L) {
  const int64_t hd = c.head_dim, q_out = int64_t(c.n_heads) * hd, kv_out = int64_t(c.n_kv_heads) * hd;
  L.attn_norm = b.vector(l + "input_layernorm.weight", c.hidden);
  L.wq = b.matrix(l + "self_attn.q_proj.weight", q_out, c.hidden);
  L.wk = b.matrix(l + "self_attn.k_proj.weight", kv_out, c.hidden);
  L.wv = b.matrix(l + "self_attn.v_proj.weight", kv_out, c.hidden);
  if (c.qkv_bias) {
    L.bq = b.vector(l + "self_attn.q_proj.bias", q_out);
    L.bk = b.vector(l + "self_attn.k_proj.bias", kv_out);
    L.bv = b.vector(l + "self_attn.v_proj.bias", kv_out);
  }
  if (c.qk_norm) {
    L.q_norm = b.vector(l + "self_attn.q_norm.weight", hd);
    L.k_norm = b.vector(l + "self_attn.k_norm.weight", hd);
  }
  L.wo = b.matrix(l + "self_attn.o_proj.weight", c.hidden, q_out);
  L.ffn_norm = b.vector(l + "post_attention_layernorm.weight", c.hidden);
}

LayerWeights::Expert bind_hf_mlp(WeightBinder& b, const std::string& prefix, int64_t ffn, int64_t hidden) {
  LayerWeights::Expert e;
  e.w_gate = b.matrix(prefix + "gate_proj.weight", ffn, hidden);
  e.w_up = b.matrix(prefix + "up_proj.weight", ffn, hidden);
  e.w_down = b.matrix(prefix + "down_proj.weight", hidden, ffn);
  return e;
}

void bind_hf_dense_mlp(WeightBinder& b, const ModelConfig& c, const std::string& prefix, LayerWeights& L) {
  const LayerWeights::Expert mlp = bind_hf_mlp(b, prefix, c.ffn, c.hidden);
  L.w_gate = mlp.w_gate;
  L.w_up = mlp.w_up;
  L.w_down = mlp.w_down;
}

void bind_hf_moe(WeightBinder& b, const ModelConfig& c, const std::string& prefix, const std::string& shared_name,
                 LayerWeights& L) {
  const MoeConfig& moe = c.moe;
  L.router = b.matrix(prefix + "gate.weight", moe.n_experts, c.hidden);
  if (moe.expert_bias) L.router_bias = b.vector(prefix + "gate.expert_bias", moe.n_experts);
  for (int e = 0; e < moe.n_experts; ++e)
    L.experts.push_back(bind_hf_mlp(b, prefix + "experts." + std::to_string(e) + ".", moe.expert_ffn, c.hidden));
  if (moe.shared_ffn > 0) L.shared = bind_hf_mlp(b, prefix + shared_name, moe.shared_ffn, c.hidden);
}

void bind_hf_ends(WeightBinder& b, const ModelConfig& c, const std::string& embed_name, ModelWeights& w) {
  w.embed = b.matrix(embed_name, c.vocab, c.hidden);
  w.final_norm = b.vector("model.norm.weight", c.hidden);
  w.lm_head = c.tied_embeddings ? w.embed : b.matrix("lm_head.weight", c.vocab, c.hidden);
}

void bind_hf_layers(WeightBinder& b, const ModelConfig& c, ModelWeights& w, const std::string& shared_name) {
  w.layers.resize(size_t(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    LayerWeights& L = w.layers[size_t(i)];
    bind_hf_attention(b, c, l, L);
    if (c.moe.is_moe_layer(i)) bind_hf_moe(b, c, l + "mlp.", shared_name, L);
    else bind_hf_dense_mlp(b, c, l + "mlp.", L);
  }
  bind_hf_ends(b, c, "model.embed_tokens.weight", w);
}

void bind_hf_dense_model(WeightBinder& b, const ModelConfig& c, ModelWeights& w) { bind_hf_layers(b, c, w, ""); }

void read_hf_expert_counts(const JsonFields& c, const char* width_key, MoeConfig& moe) {
  moe.n_experts = c.int32("num_experts");
  moe.top_k = c.int32("num_experts_per_tok");
  moe.expert_ffn = c.int32(width_key);
}

TensorView row_slice(const TensorView& t, int64_t begin, int64_t rows) {
  check(t.ndim == 2 && begin >= 0 && begin + rows <= t.dim(0),
        "row_slice: rows [" + std::to_string(begin) + ", " + std::to_string(begin + rows) + ") outside " +
            shape_string(t));
  TensorView s = t;
  s.data = t.row_bytes(begin);
  s.shape[0] = rows;
  return s;
}

}  // namespace unmask
