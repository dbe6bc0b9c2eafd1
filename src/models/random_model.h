// models/random_model.h — in-memory models with seeded random weights, for benchmarks
// and tests that need a model of a given shape but not a trained one.
//
// The returned Model owns its weight bytes (Model::owned, one buffer per tensor) and
// its TensorViews point into them; nothing is borrowed from the caller.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "unmask/model.h"

namespace unmask {

struct RandomModelSpec {
  // "llada" (no qkv bias, logits unshifted), "dream" (qkv bias, shifted), "sdar"
  // (QK-norm, block-causal), "fast_dllm_v2" (qkv bias, shifted, block-causal),
  // "lladamoe" (QK-norm, softmax MoE every layer), "llada2" (QK-norm, partial RoPE,
  // block-causal, sigmoid grouped MoE after one dense layer, shared expert).
  std::string family = "llada";
  int hidden = 2048, layers = 16, heads = 16, ffn = 5632, vocab = 32768;
  int kv_heads = 0;  // 0: = heads
  int head_dim = 0;  // 0: = hidden / heads
  // MoE families: experts per layer, experts per token, expert width; llada2 also one
  // shared expert of expert width, dense first layer of width ffn, 8 groups keep 4
  // (when experts divide). Block-causal families: block (attention block size).
  int experts = 64, top_k = 8, expert_ffn = 1024, block = 32;
  DType dtype = DType::F32;  // every tensor (matmul weights, norms, biases, embedding): F32 or BF16
  uint64_t seed = 1;
};

// Parses "FAMILY:key=value,key=value,...", e.g.
//   llada:hidden=2048,layers=16,heads=16,ffn=5632,vocab=32768,kv_heads=16,dtype=bf16
//   lladamoe:hidden=2048,layers=16,heads=16,experts=64,top_k=8,expert_ffn=1024
// Keys: hidden layers heads kv_heads head_dim ffn vocab dtype (f32|bf16) seed experts
// top_k expert_ffn block; keys not
// given keep RandomModelSpec's defaults. Throws Error naming the bad key or value.
RandomModelSpec parse_random_model_spec(const std::string& spec);

// Builds the model. Weights are uniform with variance 1/fan_in (so activations keep
// unit scale through every matmul), norm weights 1 +- 0.1, biases +-0.02, embedding
// rows unit variance. Deterministic in spec.seed, independent of the thread count.
// Throws Error on an inconsistent shape (e.g. heads not dividing hidden).
std::unique_ptr<Model> make_random_model(const RandomModelSpec& spec);

}  // namespace unmask
