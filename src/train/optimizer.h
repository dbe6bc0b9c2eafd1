// train/optimizer.h — AdamW, the warmup + cosine learning-rate schedule and global-norm
// gradient clipping, as torch.optim.AdamW / clip_grad_norm_ compute them (the reference
// test checks ten steps against torch). Buffers are the caller's, laid out by ParamLayout.
#pragma once
#include <cstdint>

#include "ops/cpu/matmul.h"
#include "train/model.h"

namespace unmask::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

struct LrSchedule {
  double peak = 1e-3, min_ratio = 0.1;
  int64_t warmup = 0, total = 1;
};
// step is 0-based: linear warmup peak * (step + 1) / warmup for step < warmup, then cosine
// from peak to peak * min_ratio at step total - 1.
double learning_rate(const LrSchedule& s, int64_t step);

// Scales grads so their global L2 norm is at most max_norm (torch: coefficient
// max_norm / (norm + 1e-6), applied only when below 1). Returns the norm before clipping.
// max_norm <= 0: no clipping, norm still returned.
double clip_grad_norm(float* grads, size_t n, double max_norm);

// One AdamW update (t = 1-based step count, for bias correction). Decoupled weight
// decay (param *= 1 - lr * wd) on slots with decay set; m, v updated in place.
void adamw_update(const ParamLayout& layout, float* params, const float* grads, float* m, float* v, int64_t t,
                  double lr, const AdamWOptions& o);

// The per-element AdamW arithmetic of one span, in f32 as torch does it:
//   p *= decay;  m += (1 - b1)(g - m);  v = b2 v + ((1 - b2) g) g;
//   p -= (step_size m) / (sqrt(v) / sqrt_bc2 + eps)
// every operation rounded separately (no fused multiply-add), so the AVX-512 span
// (optimizer_avx512.cpp) equals the scalar one bit for bit.
struct AdamWSpan {
  float* params = nullptr;
  const float* grads = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  int64_t n = 0;
  float decay = 1, b1 = 0, b2 = 0, step_size = 0, sqrt_bc2 = 1, eps = 0;
};
void adamw_span(ops::Isa isa, const AdamWSpan& s);

namespace optimizer_detail {
void adamw_span_avx512(const AdamWSpan& s);
}  // namespace optimizer_detail

}  // namespace unmask::train
