// train/optimizer.cpp — AdamW, LR schedule, gradient clipping.
#include "train/optimizer.h"

#include <cmath>
#include <vector>

namespace unmask::train {

double learning_rate(const LrSchedule& s, int64_t step) {
  if (step < s.warmup) return s.peak * double(step + 1) / double(s.warmup);
  const int64_t span = s.total - 1 - s.warmup;
  const double progress = span > 0 ? std::min(1.0, double(step - s.warmup) / double(span)) : 1.0;
  const double min_lr = s.peak * s.min_ratio;
  return min_lr + 0.5 * (s.peak - min_lr) * (1.0 + std::cos(M_PI * progress));
}

double clip_grad_norm(float* grads, size_t n, double max_norm) {
  double ss = 0;
#pragma omp parallel for reduction(+ : ss) schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; ++i) ss += double(grads[i]) * double(grads[i]);
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

void adamw_update(const ParamLayout& layout, float* params, const float* grads, float* m, float* v, int64_t t,
                  double lr, const AdamWOptions& o) {
  const double bc1 = 1.0 - std::pow(o.beta1, double(t)), bc2 = 1.0 - std::pow(o.beta2, double(t));
  const float b1 = float(o.beta1), b2 = float(o.beta2);  // as torch, in f32
  const float step_size = float(lr / bc1), sqrt_bc2 = float(std::sqrt(bc2)), eps = float(o.eps);
  for (const TensorSlot& s : layout.slots) {
    const float decay = s.decay ? float(1.0 - lr * o.weight_decay) : 1.0f;
    const size_t begin = s.offset, end = s.offset + s.numel;
#pragma omp parallel for schedule(static) if (s.numel > 65536)
    for (size_t i = begin; i < end; ++i) {
      params[i] *= decay;
      m[i] += (1.0f - b1) * (grads[i] - m[i]);  // torch's lerp form
      v[i] = b2 * v[i] + (1.0f - b2) * grads[i] * grads[i];
      params[i] -= step_size * m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps);
    }
  }
}

}  // namespace unmask::train
