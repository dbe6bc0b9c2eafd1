// models/linear.h — the weight products of a forward, shared by forward.cpp and moe.cpp.
// Borrows everything; owns nothing past the call.
#pragma once
#include <cstdint>
#include <initializer_list>

#include "ops/cpu/matmul.h"
#include "unmask/model.h"

namespace unmask {

// How a forward runs its products.
struct LinearCall {
  bool bf16 = false;                 // round outputs to bf16 as torch's bf16 modules do
  bool reference_precision = false;  // scalar double-accumulating matmuls
};

// targets[i].y [n, out_i] = in [n, k] · targets[i].w^T (+ targets[i].bias), rounded to bf16
// when call.bf16. Weights that share an input (a layer's q/k/v, its gate/up) go in one call:
// the fast path is one ops::matmul_multi, bitwise the products one by one. Adds the FLOPs
// and weight bytes read to stats->flops / stats->weight_bytes.
void linear(const float* in, int64_t n, std::initializer_list<ops::MatmulTarget> targets, const LinearCall& call,
            ForwardOutput* stats);

}  // namespace unmask
