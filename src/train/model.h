// train/model.h — the trainable llada model: parameter layout, initialisation, the
// training forward that keeps what the backward needs, and the backward.
//
// All parameters live in one f32 buffer laid out by ParamLayout (HF tensor names, in a
// fixed order); gradients and the AdamW moments use the same layout. Tensor views into
// a buffer (ModelTensors) borrow it. A Workspace owns the activations of one step.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "unmask/model.h"
#include "unmask/train.h"

namespace unmask::train {

struct TensorSlot {
  std::string name;            // HF name, e.g. model.transformer.blocks.0.q_proj.weight
  std::vector<int64_t> shape;  // [rows, cols] or [d]
  size_t offset = 0, numel = 0;
  bool decay = false;          // weight decay applies (2-D tensors)
};

struct ParamLayout {
  ModelShape shape;
  std::vector<TensorSlot> slots;  // embed, per layer (attn_norm wq wk wv wo ffn_norm w_gate w_up w_down), ln_f, head
  size_t total = 0;               // floats
};

ParamLayout make_param_layout(const ModelShape& shape);

template <class T>
struct LayerTensors {
  T *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
};
template <class T>
struct ModelTensors {
  T* embed;  // [vocab, hidden]
  std::vector<LayerTensors<T>> layers;
  T* final_norm;  // [hidden]
  T* lm_head;     // [vocab, hidden]
};
ModelTensors<float> bind_tensors(const ParamLayout& layout, float* base);
ModelTensors<const float> bind_tensors(const ParamLayout& layout, const float* base);

// Matrices ~ N(0, 0.02^2), the output projections (attn_out, ff_out) scaled by
// 1/sqrt(2 * layers) (GPT-2 style, keeps the residual stream's scale independent of
// depth), norm weights 1. Deterministic in seed.
void init_params(const ParamLayout& layout, uint64_t seed, float* params);

// A Model (inference path: forward(), decoders, eval) whose f32 TensorViews borrow
// `params`; valid while params lives and is not resized.
std::unique_ptr<Model> model_view(const ParamLayout& layout, const float* params, const SpecialTokens& special);

// One training batch: B sequences of length L (rows b*L .. b*L+L-1).
struct TrainBatch {
  int batch = 0, seq_len = 0;
  std::vector<int32_t> input;   // [B*L] tokens after masking
  std::vector<int32_t> target;  // [B*L] clean tokens
  std::vector<float> weight;    // [B*L] loss weight; 0 = not scored (not masked)
};

struct StepOptions {
  DType compute = DType::F32;  // matmul operands (BF16: weights and activations rounded)
  int head_chunk_rows = 256;   // LM head + CE processed this many scored rows at a time
};

struct Workspace;  // activations of one step, reused across steps
struct WorkspaceDeleter {
  void operator()(Workspace* w) const;
};
using WorkspacePtr = std::unique_ptr<Workspace, WorkspaceDeleter>;
WorkspacePtr make_workspace();

struct StepResult {
  double loss = 0;   // sum_i weight_i * CE_i
  double flops = 0;  // FLOPs performed (2 per multiply-add; matmuls and attention)
};

// Loss of the batch; when `grads` is not null, also overwrites grads (layout-sized)
// with dloss/dparams. Validates token ids against the vocabulary (throws Error).
StepResult forward_backward(const ParamLayout& layout, const float* params, const TrainBatch& batch,
                            const StepOptions& options, Workspace& ws, float* grads);

}  // namespace unmask::train
