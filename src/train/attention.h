// train/attention.h — the trainer's attention on the matmul kernels (f32).
//
// Same contract and numerics as attention_forward / attention_backward in
// train/blocks.h (the plain-loop reference these are tested against): q, k, v, out
// [batch * seq_len, heads, head_dim], lse [batch * seq_len, heads]. Each (sequence,
// head) pair runs its products (Q K^T, P V, dO V^T, dS K, dS^T Q, P^T dO) through the
// packed GEMM (ops/cpu/gemm.h), reading the head's slices in place through row strides
// and writing its outputs in place; only K^T and V^T are copied (transposed panels).
// One pair per thread. Buffers are the caller's; panels and scores are per-thread scratch.
#pragma once
#include "train/blocks.h"

namespace unmask::train {

void attention_forward_fast(const float* q, const float* k, const float* v, const AttentionDims& a, float* out,
                            float* lse);
// Overwrites dq, dk, dv.
void attention_backward_fast(const float* q, const float* k, const float* v, const float* out, const float* lse,
                             const float* dout, const AttentionDims& a, float* dq, float* dk, float* dv);

}  // namespace unmask::train
