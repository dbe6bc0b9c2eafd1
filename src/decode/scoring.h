// decode/scoring.h — per-slot scores computed from one row of logits.
//
// Every function works on one row of `n` vocabulary entries (caller-owned buffers).
// Precision follows the reference code each decoder reproduces: LLaDA's reference and
// Dream compute softmax in float32, Fast-dLLM's LLaDA confidence in float64.
#pragma once
#include <cstdint>

namespace unmask::decode {

// torch.finfo(torch.float32).min: what Dream's top-k / top-p filters write.
inline constexpr float kFloat32Lowest = -3.4028234663852886e38f;

// Softmax as torch's CPU kernel computes it: m = max; e_v = exp(l_v - m);
// p_v = e_v * (1 / sum e). The f32 form rounds e_v and the sum to float32 (the sum is
// accumulated in double: torch's vectorized float sum is close to that, and the
// fixtures have no near-ties that would expose the difference).
void softmax_f32(const float* logits, int n, float* probs);
void softmax_f64(const float* logits, int n, double* probs);

// Index of the first maximum (torch.argmax / max(dim) on CPU return the first).
int argmax_first(const float* v, int n);

// Dream's top_k_logits: keep entries >= the k-th largest value (ties at the boundary
// are all kept), set the rest to kFloat32Lowest. k >= n keeps everything.
void top_k_filter(float* logits, int n, int k);
// Dream's top_p_logits: sort descending, cumulative float32 softmax; drop entries whose
// cumulative probability exceeds top_p, shifted right by one so the entry crossing
// top_p and the top-1 are kept; dropped entries get kFloat32Lowest. Equal logits keep
// index order (torch.sort's order among equals is unspecified; ours is stable).
void top_p_filter(float* logits, int n, double top_p);

// Dream's margin confidence: p1 - p2 of the two largest probabilities (float32).
float margin_confidence(const float* probs, int n);
// Dream's negative entropy: sum_v p_v * log(p_v + 1e-10) (float32; larger = surer).
float neg_entropy(const float* probs, int n);

}  // namespace unmask::decode
