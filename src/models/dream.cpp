// Dream (DreamModel: Qwen2 names and config fields, q/k/v bias, no o_proj bias).
// Fully bidirectional attention; HF Qwen2 RoPE (cos/sin cast to the activation
// dtype); logits are AR-style, so slot p is scored by row p-1 (logit_shift 1).
#include "models/registry.h"
#include "unmask/error.h"

namespace unmask {

namespace {

void read_dream_config(const JsonFields& c, ModelConfig& m) {
  m.hidden = c.int32("hidden_size");
  m.n_heads = c.int32("num_attention_heads");
  m.n_layers = c.int32("num_hidden_layers");
  m.n_kv_heads = c.int32_or("num_key_value_heads", m.n_heads);
  m.ffn = c.int32("intermediate_size");
  m.vocab = c.int32("vocab_size");
  m.rms_eps = float(c.number_or("rms_norm_eps", 1e-6));
  m.rope_theta = c.number_or("rope_theta", 10000.0);
  m.rope_precision = RopePrecision::kCastCosSin;
  m.qkv_bias = true;
  m.logit_shift = 1;
  m.max_context = c.integer_or("max_position_embeddings", 32768);
  m.tied_embeddings = c.boolean_or("tie_word_embeddings", false);
  if (c.has("rope_scaling")) throw Error(c.file() + ": field 'rope_scaling' is set; scaled RoPE is not supported yet");
  if (c.string_or("hidden_act", "silu") != "silu")
    throw Error(c.file() + ": field 'hidden_act' must be 'silu' for Dream");
  // Checked here, not only in validate_config: the division below needs it.
  if (m.n_heads <= 0)
    throw Error(c.file() + ": field 'num_attention_heads' must be positive, got " + std::to_string(m.n_heads));
  if (m.hidden % m.n_heads != 0) throw Error(c.file() + ": hidden_size not divisible by num_attention_heads");
  m.head_dim = c.int32_or("head_dim", m.hidden / m.n_heads);
  auto& s = m.special;
  s.mask = c.int32_or("mask_token_id", -1);
  s.eos = int32_t(c.first_integer("eos_token_id").value_or(-1));
  s.pad = c.int32_or("pad_token_id", -1);
  s.bos = c.int32_or("bos_token_id", -1);
}

void bind_dream_weights(WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  const int64_t hd = c.head_dim, q_out = int64_t(c.n_heads) * hd, kv_out = int64_t(c.n_kv_heads) * hd;
  w.embed = b.matrix("model.embed_tokens.weight", c.vocab, c.hidden);
  w.layers.resize(size_t(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    LayerWeights& L = w.layers[size_t(i)];
    L.attn_norm = b.vector(l + "input_layernorm.weight", c.hidden);
    L.wq = b.matrix(l + "self_attn.q_proj.weight", q_out, c.hidden);
    L.wk = b.matrix(l + "self_attn.k_proj.weight", kv_out, c.hidden);
    L.wv = b.matrix(l + "self_attn.v_proj.weight", kv_out, c.hidden);
    L.bq = b.vector(l + "self_attn.q_proj.bias", q_out);
    L.bk = b.vector(l + "self_attn.k_proj.bias", kv_out);
    L.bv = b.vector(l + "self_attn.v_proj.bias", kv_out);
    L.wo = b.matrix(l + "self_attn.o_proj.weight", c.hidden, q_out);
    L.ffn_norm = b.vector(l + "post_attention_layernorm.weight", c.hidden);
    L.w_gate = b.matrix(l + "mlp.gate_proj.weight", c.ffn, c.hidden);
    L.w_up = b.matrix(l + "mlp.up_proj.weight", c.ffn, c.hidden);
    L.w_down = b.matrix(l + "mlp.down_proj.weight", c.hidden, c.ffn);
  }
  w.final_norm = b.vector("model.norm.weight", c.hidden);
  w.lm_head = c.tied_embeddings ? w.embed : b.matrix("lm_head.weight", c.vocab, c.hidden);
}

}  // namespace

const FamilyBinding& dream_family() {
  static const FamilyBinding f{"dream", {"DreamModel"}, {"Dream", "dream"}, read_dream_config, bind_dream_weights};
  return f;
}

}  // namespace unmask
