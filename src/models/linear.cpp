// models/linear.cpp — see linear.h.
#include "models/linear.h"

#include <span>

#include "ops/ops.h"

namespace unmask {

void linear(const float* in, int64_t n, std::initializer_list<ops::MatmulTarget> targets, const LinearCall& call,
            ForwardOutput* stats) {
  if (call.reference_precision) {
    for (const ops::MatmulTarget& t : targets) {
      ops::matmul_reference(in, n, t.w, t.bias, t.y);
      if (call.bf16) ops::round_to_bf16(t.y, n * t.w.dim(0));
    }
  } else {
    ops::matmul_multi(in, n, std::span<const ops::MatmulTarget>(targets.begin(), targets.size()), call.bf16);
  }
  for (const ops::MatmulTarget& t : targets) {
    stats->flops += 2.0 * double(n) * double(t.w.dim(0)) * double(t.w.dim(1));
    stats->weight_bytes += double(t.w.nbytes());
  }
}

}  // namespace unmask
