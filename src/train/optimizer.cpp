// train/optimizer.cpp — AdamW, LR schedule, gradient clipping.
#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/vec_math.h"

namespace unmask::train {

double learning_rate(const LrSchedule& s, int64_t step) {
  if (step < s.warmup) return s.peak * double(step + 1) / double(s.warmup);
  const int64_t span = s.total - 1 - s.warmup;
  const double progress = span > 0 ? std::min(1.0, double(step - s.warmup) / double(span)) : 1.0;
  const double min_lr = s.peak * s.min_ratio;
  return min_lr + 0.5 * (s.peak - min_lr) * (1.0 + std::cos(M_PI * progress));
}

double clip_grad_norm(float* grads, size_t n, double max_norm) {
  // Fixed chunks summed in chunk order: the norm does not depend on the thread count.
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (int64_t(n) + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks));
  const ops::Isa isa = ops::best_isa();
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c)
    partial[size_t(c)] = ops::sum_squares(isa, grads + c * kChunk, std::min<int64_t>(kChunk, int64_t(n) - c * kChunk));
  double ss = 0;
  for (double p : partial) ss += p;
  const double norm = std::sqrt(ss);
  if (max_norm > 0) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
      const float c = float(coef);
#pragma omp parallel for schedule(static) if (n > 65536)
      for (size_t i = 0; i < n; ++i) grads[i] *= c;
    }
  }
  return norm;
}

void adamw_span(ops::Isa isa, const AdamWSpan& s) {
  if (isa == ops::Isa::kAvx512) return optimizer_detail::adamw_span_avx512(s);
  const float one_minus_b1 = 1.0f - s.b1, one_minus_b2 = 1.0f - s.b2;
  for (int64_t i = 0; i < s.n; ++i) {
    s.params[i] *= s.decay;
    s.m[i] += one_minus_b1 * (s.grads[i] - s.m[i]);  // torch's lerp form
    s.v[i] = s.b2 * s.v[i] + one_minus_b2 * s.grads[i] * s.grads[i];
    s.params[i] -= s.step_size * s.m[i] / (std::sqrt(s.v[i]) / s.sqrt_bc2 + s.eps);
  }
}

void adamw_update(const ParamLayout& layout, float* params, const float* grads, float* m, float* v, int64_t t,
                  double lr, const AdamWOptions& o) {
  const double bc1 = 1.0 - std::pow(o.beta1, double(t)), bc2 = 1.0 - std::pow(o.beta2, double(t));
  AdamWSpan span;
  span.b1 = float(o.beta1);  // as torch, in f32
  span.b2 = float(o.beta2);
  span.step_size = float(lr / bc1);
  span.sqrt_bc2 = float(std::sqrt(bc2));
  span.eps = float(o.eps);
  const ops::Isa isa = ops::best_isa();
  constexpr int64_t kChunk = 1 << 14;
  for (const TensorSlot& slot : layout.slots) {
    span.decay = slot.decay ? float(1.0 - lr * o.weight_decay) : 1.0f;
    const int64_t n = int64_t(slot.numel), chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t c = 0; c < chunks; ++c) {
      AdamWSpan part = span;
      const int64_t at = int64_t(slot.offset) + c * kChunk;
      part.params = params + at;
      part.grads = grads + at;
      part.m = m + at;
      part.v = v + at;
      part.n = std::min(kChunk, n - c * kChunk);
      adamw_span(isa, part);
    }
  }
}

}  // namespace unmask::train
