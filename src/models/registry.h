// models/registry.h — the table of model families. A family is a config reader
// (config.json fields -> ModelConfig) and a weight binder (tensor names ->
// ModelWeights); the forward is shared (models/forward.cpp).
#pragma once
#include <string>
#include <vector>

#include "io/json_file.h"
#include "unmask/model.h"

namespace unmask {

// Binds named tensors with shape and dtype checks; errors name file and tensor.
// Borrows the store; the returned views point into its mappings.
class WeightBinder {
 public:
  explicit WeightBinder(const TensorStore& store) : store_(store) {}
  // A matmul weight [rows, cols]; all matmul weights of a model must share one dtype (F32 or BF16).
  TensorView matrix(const std::string& name, int64_t rows, int64_t cols);
  // A 1-D f32/bf16/f16 vector (norm weights, biases).
  TensorView vector(const std::string& name, int64_t n);
  bool has(const std::string& name) const { return store_.has(name); }
  DType matmul_dtype() const { return matmul_dtype_; }

 private:
  TensorView checked(const std::string& name, std::initializer_list<int64_t> shape);
  const TensorStore& store_;
  DType matmul_dtype_ = DType::F32;
  bool dtype_seen_ = false;
};

struct FamilyBinding {
  const char* name;                      // "llada", "dream"
  std::vector<std::string> architectures;  // config.json "architectures" values
  std::vector<std::string> model_types;    // config.json "model_type" values
  void (*read_config)(const JsonFields& config, ModelConfig& out);
  void (*bind_weights)(WeightBinder& binder, const ModelConfig& config, ModelWeights& out);
};

const FamilyBinding& llada_family();
const FamilyBinding& dream_family();
const FamilyBinding& lladamoe_family();
const FamilyBinding& llada2_family();
const FamilyBinding& sdar_family();
const FamilyBinding& fast_dllm_v2_family();

// ---- shared by the HF-named families (models/hf_layers.cpp) ----------------------
// Qwen2/Llama config fields: hidden_size, num_attention_heads, num_hidden_layers,
// num_key_value_heads, intermediate_size (0 when absent), vocab_size, rms_norm_eps,
// rope_theta, max_position_embeddings, tie_word_embeddings, head_dim and the special
// token ids; HF RoPE rounding (cos/sin cast). Rejects rope_scaling and non-SiLU MLPs.
void read_hf_config(const JsonFields& c, ModelConfig& m);
// `model.layers.N.self_attn.{q,k,v,o}_proj` (+ q/k/v bias when qkv_bias, q_norm/k_norm
// when qk_norm), input_layernorm and post_attention_layernorm of layer `prefix`.
void bind_hf_attention(WeightBinder& b, const ModelConfig& c, const std::string& prefix, LayerWeights& L);
// One SwiGLU MLP `prefix{gate,up,down}_proj.weight` of width ffn.
LayerWeights::Expert bind_hf_mlp(WeightBinder& b, const std::string& prefix, int64_t ffn, int64_t hidden);
// The dense SwiGLU MLP `prefix{gate,up,down}_proj.weight` (width c.ffn) into L.w_*.
void bind_hf_dense_mlp(WeightBinder& b, const ModelConfig& c, const std::string& prefix, LayerWeights& L);
// An MoE MLP: router `prefix gate.weight` [E, hidden] (+ `gate.expert_bias` when
// moe.expert_bias), experts `prefix experts.E.`, shared expert `prefix shared_name`.
void bind_hf_moe(WeightBinder& b, const ModelConfig& c, const std::string& prefix, const std::string& shared_name,
                 LayerWeights& L);
// `prefix.embed`, final `model.norm` and `lm_head` (or the tied embedding).
void bind_hf_ends(WeightBinder& b, const ModelConfig& c, const std::string& embed_name, ModelWeights& w);
// A Qwen2-named model: every layer bind_hf_attention, then bind_hf_moe (MoE layers, shared
// expert `shared_name`) or the dense `mlp.` of width ffn; then `model.embed_tokens` and
// the ends (Dream, SDAR, Fast-dLLM v2, LLaDA-MoE).
void bind_hf_layers(WeightBinder& b, const ModelConfig& c, ModelWeights& w, const std::string& shared_name);
void bind_hf_dense_model(WeightBinder& b, const ModelConfig& c, ModelWeights& w);  // no MoE layers
// num_experts, num_experts_per_tok and the expert width field `width_key`.
void read_hf_expert_counts(const JsonFields& c, const char* width_key, MoeConfig& moe);
// Rows [begin, begin + rows) of a 2-D view (fused projections split at bind time).
TensorView row_slice(const TensorView& t, int64_t begin, int64_t rows);

// Picks the family by architectures[0], falling back to model_type.
// Throws Error naming the values found and the families known.
const FamilyBinding& find_family(const JsonFields& config);
const FamilyBinding* family_by_name(const std::string& name);

}  // namespace unmask
