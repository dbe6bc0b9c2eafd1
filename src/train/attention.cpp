// train/attention.cpp — attention forward/backward as per-head packed GEMMs (ops/cpu/gemm.h).
#include "train/attention.h"

#include <cmath>
#include <vector>

#include "ops/cpu/gemm.h"
#include "ops/cpu/matmul_grad.h"
#include "ops/cpu/vec_math.h"

namespace unmask::train {

namespace {

// Per-thread scratch for one (sequence, head): the transposed key / value panels the
// products with K^T and V^T read as their B operand, and score-sized [L, L] buffers.
struct HeadScratch {
  std::vector<float> panel;   // [L, hd]: a gathered slice, transposed into kt / vt
  std::vector<float> kt, vt;  // [hd, L]
  std::vector<float> p, dp;   // [L, L]
  std::vector<float> rowdot;  // [L]
  HeadScratch(int L, int hd) {
    for (auto* b : {&panel, &kt, &vt}) b->resize(size_t(L) * size_t(hd));
    for (auto* b : {&p, &dp}) b->resize(size_t(L) * size_t(L));
    rowdot.resize(size_t(L));
  }
};

// One head's [L, hd] slice inside a [L, heads * hd] activation: row stride `stride`.
struct Slice {
  const float* data;
  int64_t stride;
};

// dst [hd, L] = the slice transposed (gathered contiguous first, then the 16 x 16 tiles).
void transpose_slice(Slice s, int L, int hd, std::vector<float>& panel, float* dst) {
  for (int i = 0; i < L; ++i)
    for (int c = 0; c < hd; ++c) panel[size_t(i) * size_t(hd) + size_t(c)] = s.data[i * s.stride + c];
  ops::transpose_f32(ops::best_isa(), panel.data(), L, hd, dst);
}

// C [m, n] (row stride ldc) = A · B with A(i, p) = a[i * a_rs + p * a_cs] and B's rows
// contiguous (stride ldb); one thread (we are inside the per-head parallel loop).
void product(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
             int64_t ldb, float* c, int64_t ldc) {
  ops::gemm_f32(ops::best_isa(), ops::GemmArgs{m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, false});
}

// p[L, L] = softmax rows of scale * (Q K^T); lse_out[i] (stride `lse_stride`) when given,
// else p = exp(scale * s - lse[i]) from the stored lse. s.kt holds K^T.
void probabilities(HeadScratch& s, Slice q, int L, int hd, float scale, float* lse_out, const float* lse_in,
                   int64_t lse_stride) {
  product(L, L, hd, q.data, q.stride, 1, s.kt.data(), L, s.p.data(), L);
  const ops::Isa isa = ops::best_isa();
  for (int i = 0; i < L; ++i) {
    float* row = s.p.data() + size_t(i) * size_t(L);
    for (int j = 0; j < L; ++j) row[j] *= scale;
    // exp_f32 (ops/cpu/vec_math.h) on whole rows: SIMD, and within an ulp of libm's.
    if (lse_in) {
      ops::exp_shifted(isa, row, lse_in[i * lse_stride], row, L);
      continue;
    }
    const float m = ops::max_value(isa, row, L);
    const double sum = ops::exp_shifted_sum(isa, row, m, row, L);
    const float inv = float(1.0 / sum);
    for (int j = 0; j < L; ++j) row[j] *= inv;
    lse_out[i * lse_stride] = float(double(m) + std::log(sum));
  }
}

// Runs body(scratch, b, h, base) for every (sequence b, head h) pair, base = offset of
// the pair's first element in the [batch * L, heads * hd] activations.
template <class Body>
void for_each_head(const AttentionDims& a, Body body) {
#pragma omp parallel
  {
    HeadScratch s(a.seq_len, a.head_dim);
#pragma omp for schedule(static) collapse(2)
    for (int b = 0; b < a.batch; ++b)
      for (int h = 0; h < a.heads; ++h)
        body(s, b, h, int64_t(b) * a.seq_len * a.heads * a.head_dim + int64_t(h) * a.head_dim);
  }
}

}  // namespace

void attention_forward_fast(const float* q, const float* k, const float* v, const AttentionDims& a, float* out,
                            float* lse) {
  const int L = a.seq_len, hd = a.head_dim;
  const int64_t stride = int64_t(a.heads) * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  for_each_head(a, [&](HeadScratch& s, int b, int h, int64_t base) {
    transpose_slice({k + base, stride}, L, hd, s.panel, s.kt.data());
    probabilities(s, {q + base, stride}, L, hd, scale, lse + int64_t(b) * L * a.heads + h, nullptr, a.heads);
    product(L, hd, L, s.p.data(), L, 1, v + base, stride, out + base, stride);  // O = P V
  });
}

void attention_backward_fast(const float* q, const float* k, const float* v, const float* out, const float* lse,
                             const float* dout, const AttentionDims& a, float* dq, float* dk, float* dv) {
  const int L = a.seq_len, hd = a.head_dim;
  const int64_t stride = int64_t(a.heads) * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  for_each_head(a, [&](HeadScratch& s, int b, int h, int64_t base) {
    transpose_slice({k + base, stride}, L, hd, s.panel, s.kt.data());
    transpose_slice({v + base, stride}, L, hd, s.panel, s.vt.data());
    probabilities(s, {q + base, stride}, L, hd, scale, nullptr, lse + int64_t(b) * L * a.heads + h, a.heads);
    const float* d_o = dout + base;
    for (int i = 0; i < L; ++i) s.rowdot[size_t(i)] = dot(d_o + i * stride, out + base + i * stride, hd);
    product(L, L, hd, d_o, stride, 1, s.vt.data(), L, s.dp.data(), L);  // dP = dO V^T
    for (int i = 0; i < L; ++i)
      for (int j = 0; j < L; ++j) {
        const size_t ij = size_t(i) * size_t(L) + size_t(j);
        s.dp[ij] = s.p[ij] * (s.dp[ij] - s.rowdot[size_t(i)]) * scale;  // dS, scale folded in
      }
    product(L, hd, L, s.dp.data(), L, 1, k + base, stride, dq + base, stride);  // dQ = dS K
    product(L, hd, L, s.dp.data(), 1, L, q + base, stride, dk + base, stride);  // dK = dS^T Q
    product(L, hd, L, s.p.data(), 1, L, d_o, stride, dv + base, stride);        // dV = P^T dO
  });
}

}  // namespace unmask::train
