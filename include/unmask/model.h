// unmask/model.h — loaded models and the forward pass.
//
// A Model owns: its parsed config, a shared_ptr to the TensorStore (the mmapped
// weight files) and any repacked weight panels. Its weight structs are
// non-owning TensorViews into those. Families (llada, dream, ...) differ only in
// how names/config fields bind to these structs and in the flags of ModelConfig;
// the forward is one function built from shared blocks.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include <utility>

#include "unmask/safetensors.h"
#include "unmask/tensor.h"

namespace unmask {

class GgufFile;  // unmask/gguf.h

// How RoPE is rounded when activations are bf16.
enum class RopePrecision : uint8_t {
  kF32,             // LLaDA rope_full_precision: q/k upcast, rotate in f32, cast back
  kCastCosSin,      // HF Qwen/Llama: cos/sin computed in f32, cast to activation dtype, rotate there
};

// How MoE layers route a token (models/moe.cpp). Softmax: p = softmax(router logits),
// top_k by p (LLaDA-MoE). Sigmoid: s = sigmoid(logits), chosen by s + expert_bias inside
// the topk_group best of n_group groups (group score = sum of its top-2), weights s (LLaDA2).
enum class RouterScore : uint8_t { kSoftmax, kSigmoid };

struct MoeConfig {
  int n_experts = 0;            // 0 = dense model
  int top_k = 0;                // experts per token
  int expert_ffn = 0;           // each expert's SwiGLU width
  int shared_ffn = 0;           // shared expert's width (0 = none); runs on every token
  int first_dense_layers = 0;   // layers [0, first_dense_layers) use the dense MLP (ModelConfig::ffn)
  RouterScore score = RouterScore::kSoftmax;
  bool expert_bias = false;     // sigmoid: per-expert bias added for selection only
  int n_group = 1, topk_group = 1;
  bool renormalize = false;     // weights / (sum of the chosen weights + 1e-20)
  double scaling = 1.0;         // routed_scaling_factor, applied after renormalisation
  bool is_moe_layer(int layer) const { return n_experts > 0 && layer >= first_dense_layers; }
};

struct SpecialTokens {  // -1 = the model has none
  int32_t mask = -1, bos = -1, eos = -1, pad = -1, eot = -1;
};

struct ModelConfig {
  std::string family;        // registry key: "llada", "dream"
  std::string architecture;  // config.json architectures[0]
  int hidden = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0;
  float rms_eps = 1e-5f;
  double rope_theta = 10000.0;
  RopePrecision rope_precision = RopePrecision::kF32;
  bool qkv_bias = false;
  bool qk_norm = false;  // per-head RMSNorm on q and k (weights [head_dim]) before RoPE
  int rotary_dim = 0;    // RoPE rotates dims [0, rotary_dim) of each head (partial RoPE); 0 = head_dim
  // Attention pattern: 0 = fully bidirectional; B > 0 = block-causal over absolute
  // positions (key j visible to query i iff pos_j / B <= pos_i / B; blocks start at 0).
  int attention_block = 0;
  MoeConfig moe;
  // Logit contract: slot p is scored by hidden row p - logit_shift (row 0 scores slot 0
  // when shifted). LLaDA 0, Dream 1.
  int logit_shift = 0;
  int64_t max_context = 0;
  bool tied_embeddings = false;  // LM head reuses the embedding table
  SpecialTokens special;
};

// Generation defaults from generation_config.json (absent fields stay unset).
struct GenerationDefaults {
  bool has_temperature = false, has_top_p = false, has_top_k = false, has_steps = false, has_alg = false;
  double temperature = 0, top_p = 1;
  int top_k = 0, steps = 0;
  std::string alg;
  std::vector<int32_t> eos_ids;
};

struct LayerWeights {
  TensorView attn_norm;        // [hidden]
  TensorView wq, wk, wv;       // [heads*hd, hidden], [kv*hd, hidden], [kv*hd, hidden]
  TensorView bq, bk, bv;       // biases (empty when !qkv_bias)
  TensorView wo;               // [hidden, heads*hd]
  TensorView ffn_norm;         // [hidden]
  TensorView w_gate, w_up;     // [ffn, hidden]   (SiLU on gate)
  TensorView w_down;           // [hidden, ffn]
  TensorView q_norm, k_norm;   // [head_dim] when qk_norm
  // MoE layers (moe.is_moe_layer): router [E, hidden], router_bias [E] (sigmoid +
  // expert_bias), experts' gate/up [expert_ffn, hidden] + down [hidden, expert_ffn];
  // shared expert the same with shared_ffn. w_gate/w_up/w_down stay empty there.
  TensorView router, router_bias;
  struct Expert {
    TensorView w_gate, w_up, w_down;
  };
  std::vector<Expert> experts;
  Expert shared;
};

struct ModelWeights {
  TensorView embed;            // [vocab, hidden]
  std::vector<LayerWeights> layers;
  TensorView final_norm;       // [hidden]
  TensorView lm_head;          // [vocab, hidden]
};

struct Model {
  ModelConfig config;
  GenerationDefaults generation;
  ModelWeights weights;
  DType weight_dtype = DType::F32;  // dtype of the matmul weights (F32 or BF16)
  std::string dir;                  // model folder
  std::shared_ptr<TensorStore> store;
  std::shared_ptr<const GgufFile> gguf;  // the mapped .gguf file when loaded from one
  // Backing memory for weights not used in place (e.g. in-memory random models).
  std::vector<std::vector<uint8_t>> owned;
};

struct LoadOptions {
  std::string weights_file;  // empty: the folder's default (index / model.safetensors)
};

// Loads config.json (+ generation_config.json) and binds the weights of a model
// folder. Throws Error naming the file / field / tensor on any problem.
std::unique_ptr<Model> load_model(const std::string& dir, const LoadOptions& options = {});

// Brings every weight's pages of the mapped files into memory now, so the first forward
// does not stop on hundreds of thousands of page faults (~1 s on a 2 GB file): the
// distinct byte ranges of the weights, in address order, 64 MiB per madvise
// (MADV_POPULATE_READ; one read per page where the kernel lacks it). Calls
// on_progress(bytes done, bytes total) after each piece. Borrows the model.
void prefetch_weights(const Model& model, const std::function<void(size_t done, size_t total)>& on_progress = {});

// Per-canvas key/value store: every layer's K (after RoPE) and V rows, indexed by
// canvas position, f32. Owns its buffers; a ForwardBatch borrows it.
// Storing K after RoPE equals Fast-dLLM's "store before RoPE, re-rotate at the same
// position every call": the rotation of a row at a fixed position is the same computation.
struct KvCache {
  int n_layers = 0, kv_dim = 0, capacity = 0;
  std::vector<float> k, v;  // [n_layers, capacity, kv_dim] each
  void reset(const ModelConfig& config, int positions);  // zero-filled, sized for `positions` slots
  float* k_row(int layer, int pos) { return k.data() + (size_t(layer) * size_t(capacity) + size_t(pos)) * size_t(kv_dim); }
  float* v_row(int layer, int pos) { return v.data() + (size_t(layer) * size_t(capacity) + size_t(pos)) * size_t(kv_dim); }
};

// How one sequence of a batch uses its canvas's KV cache.
struct SequenceKv {
  KvCache* cache = nullptr;  // borrowed; null = attend to the fresh rows only
  // Cached positions [begin, end) attended in addition to the sequence's fresh rows
  // (must not contain the fresh rows' positions).
  std::vector<std::pair<int32_t, int32_t>> read_spans;
  bool write = false;  // store the fresh rows' K/V at their positions (after attention reads)
};

// One model call. Rows of all sequences are concatenated; attention is full
// bidirectional inside each sequence [seq_offsets[i], seq_offsets[i+1]), over the
// sequence's fresh rows plus the cached spans named in `kv`.
struct ForwardBatch {
  std::vector<int32_t> tokens;       // [n] token ids
  std::vector<int32_t> positions;    // [n] absolute positions (RoPE)
  std::vector<int32_t> seq_offsets;  // [n_seq + 1], starts at 0, ends at n; empty = one sequence
  std::vector<int32_t> logit_rows;   // hidden rows to run the LM head on (the last layer runs only these)
  std::vector<SequenceKv> kv;        // empty, or one per sequence
  bool capture_hidden = false;       // also return every layer's input + the final norm output
  // Matmuls and attention accumulate in double (scalar reference kernels): ~100x slower.
  // For conformance: the reference trajectories are certified equal under a float64 model,
  // and a few hinge on probability gaps (~4e-7) below float32 summation-order noise.
  bool reference_precision = false;
  // Attention pattern of this call: -1 = the model's (ModelConfig::attention_block),
  // 0 = bidirectional, B > 0 = block-causal with blocks of B positions.
  int attention_block = -1;
};

struct ForwardOutput {
  std::vector<float> logits;  // [logit_rows.size(), vocab], raw (unshifted) rows
  std::vector<float> hidden;  // [n_layers + 1, n, hidden] when capture_hidden
  double flops = 0;           // multiply-adds x 2 performed
  double weight_bytes = 0;    // weight bytes read
  // MoE: expert weight bytes read (each routed expert's weights once per layer, for all
  // the tokens routed to it), and what a token-by-token loop would read (top_k experts
  // per token per layer); the first is the minimum for the routing chosen.
  double expert_bytes = 0, expert_bytes_token_loop = 0;
  // MoE: per MoE layer, the chosen experts [rows, top_k] (ascending layer order); rows is n,
  // except in the last layer, which runs only the distinct logit rows unless capture_hidden.
  std::vector<std::vector<int32_t>> router_topk;
};

// Validates token ids / positions / rows (throws Error on bad input), then runs.
void forward(const Model& model, const ForwardBatch& batch, ForwardOutput* out);

// Hidden row that scores canvas slot `slot` under the model's logit shift.
inline int logit_row_for_slot(const ModelConfig& c, int slot) {
  return slot - c.logit_shift < 0 ? slot : slot - c.logit_shift;
}

int64_t parameter_count(const Model& model);
// Parameters one token uses: every expert-free weight plus top_k experts per MoE layer
// (equals parameter_count for dense models).
int64_t active_parameter_count(const Model& model);
// One layer's parameters counting only its first `experts` experts.
int64_t layer_parameter_count(const LayerWeights& layer, int experts);

}  // namespace unmask
