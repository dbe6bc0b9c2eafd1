// models/moe.h — the mixture-of-experts SwiGLU block of one layer (LLaDA-MoE, LLaDA2).
//
// Routing follows MoeConfig (unmask/model.h). Tokens are grouped by expert: each
// routed expert's weights are streamed once per call, for all of its tokens as one
// matmul, never once per token. Borrows everything; owns nothing past the call.
#pragma once
#include <cstdint>
#include <vector>

#include "models/linear.h"
#include "unmask/model.h"

namespace unmask {

// The experts' choice for n tokens: idx / weight [n, top_k], best first.
struct MoeRouting {
  std::vector<int32_t> idx;
  std::vector<float> weight;
};

// Routes n tokens from their router logits [n, E] (f32, as router_dtype fp32 / LLaDA-MoE's
// float() gate); expert_bias [E] (empty = none) is added for selection only. Exposed for tests.
MoeRouting moe_route(const MoeConfig& moe, const float* router_logits, const std::vector<float>& expert_bias,
                     int64_t n);

// y [n, hidden] = Σ_k w_k · expert_k(h) (+ shared_expert(h)). Adds the FLOPs, weight bytes
// and expert bytes it reads to `stats`, and appends the layer's routing to
// stats->router_topk.
void moe_ffn(const ModelConfig& c, const LayerWeights& L, const float* h, int64_t n, const LinearCall& call, float* y,
             ForwardOutput* stats);

}  // namespace unmask
