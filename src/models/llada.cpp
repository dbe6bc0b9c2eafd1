// LLaDA (LLaDAModelLM, OLMo-style config and `model.transformer.*` tensor names).
// Pre-norm llama block: x += attn_out(attn(attn_norm x)); x += ff_out(silu(ff_proj h) * up_proj h).
// Fully bidirectional attention, NeoX RoPE in f32 (rope_full_precision), logits unshifted.
#include "models/registry.h"
#include "unmask/error.h"

namespace unmask {

namespace {

void require_value(const JsonFields& c, const char* key, const std::string& want, const std::string& fallback) {
  const std::string got = c.string_or(key, fallback);
  if (got != want)
    throw Error(c.file() + ": field '" + key + "' is '" + got + "'; unmask supports only '" + want + "' for LLaDA");
}

void require_flag(const JsonFields& c, const char* key, bool want) {
  if (c.boolean_or(key, want) != want)
    throw Error(c.file() + ": field '" + key + "' = " + (want ? "false" : "true") + " is not supported for LLaDA");
}

void read_llada_config(const JsonFields& c, ModelConfig& m) {
  m.hidden = c.int32("d_model");
  m.n_heads = c.int32("n_heads");
  m.n_layers = c.int32("n_layers");
  m.n_kv_heads = c.boolean_or("multi_query_attention", false) ? 1 : c.int32_or("n_kv_heads", m.n_heads);
  const int64_t mlp_ratio = c.integer_or("mlp_ratio", 4);
  m.ffn = c.int32_or("mlp_hidden_size", int(mlp_ratio * m.hidden));
  // The embedding / head have embedding_size rows (>= vocab_size when padded).
  m.vocab = c.int32_or("embedding_size", c.int32("vocab_size"));
  m.rms_eps = float(c.number_or("rms_norm_eps", 1e-5));
  m.rope_theta = c.number_or("rope_theta", 10000.0);
  m.rope_precision = c.boolean_or("rope_full_precision", true) ? RopePrecision::kF32 : RopePrecision::kCastCosSin;
  m.qkv_bias = c.boolean_or("include_qkv_bias", false) || c.boolean_or("include_bias", false);
  m.logit_shift = 0;
  m.max_context = c.integer_or("max_sequence_length", 4096);
  m.tied_embeddings = c.boolean_or("weight_tying", false);
  require_value(c, "block_type", "llama", "llama");
  require_value(c, "layer_norm_type", "rms", "rms");
  require_value(c, "activation_type", "silu", "silu");
  require_flag(c, "rope", true);
  require_flag(c, "alibi", false);
  require_flag(c, "scale_logits", false);
  require_flag(c, "input_emb_norm", false);
  require_flag(c, "attention_layer_norm", false);
  // Checked here, not only in validate_config: the division below needs it.
  if (m.n_heads <= 0) throw Error(c.file() + ": field 'n_heads' must be positive, got " + std::to_string(m.n_heads));
  if (m.hidden % m.n_heads != 0) throw Error(c.file() + ": d_model not divisible by n_heads");
  m.head_dim = m.hidden / m.n_heads;
  auto& s = m.special;
  s.mask = c.int32_or("mask_token_id", -1);
  s.eos = int32_t(c.first_integer("eos_token_id").value_or(-1));
  s.pad = c.int32_or("pad_token_id", -1);
  s.bos = c.int32_or("bos_token_id", -1);
}

void bind_llada_weights(WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  const std::string p = "model.transformer.";
  const int64_t hd = c.head_dim, q_out = int64_t(c.n_heads) * hd, kv_out = int64_t(c.n_kv_heads) * hd;
  w.embed = b.matrix(p + "wte.weight", c.vocab, c.hidden);
  w.layers.resize(size_t(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string l = p + "blocks." + std::to_string(i) + ".";
    LayerWeights& L = w.layers[size_t(i)];
    L.attn_norm = b.vector(l + "attn_norm.weight", c.hidden);
    L.wq = b.matrix(l + "q_proj.weight", q_out, c.hidden);
    L.wk = b.matrix(l + "k_proj.weight", kv_out, c.hidden);
    L.wv = b.matrix(l + "v_proj.weight", kv_out, c.hidden);
    if (c.qkv_bias) {
      L.bq = b.vector(l + "q_proj.bias", q_out);
      L.bk = b.vector(l + "k_proj.bias", kv_out);
      L.bv = b.vector(l + "v_proj.bias", kv_out);
    }
    L.wo = b.matrix(l + "attn_out.weight", c.hidden, q_out);
    L.ffn_norm = b.vector(l + "ff_norm.weight", c.hidden);
    L.w_gate = b.matrix(l + "ff_proj.weight", c.ffn, c.hidden);
    L.w_up = b.matrix(l + "up_proj.weight", c.ffn, c.hidden);
    L.w_down = b.matrix(l + "ff_out.weight", c.hidden, c.ffn);
  }
  w.final_norm = b.vector(p + "ln_f.weight", c.hidden);
  w.lm_head = c.tied_embeddings ? w.embed : b.matrix(p + "ff_out.weight", c.vocab, c.hidden);
}

}  // namespace

const FamilyBinding& llada_family() {
  static const FamilyBinding f{"llada", {"LLaDAModelLM"}, {"llada"}, read_llada_config, bind_llada_weights};
  return f;
}

}  // namespace unmask
