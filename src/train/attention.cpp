// train/attention.cpp — attention forward/backward as per-head matmuls.
#include "train/attention.h"

#include <cmath>
#include <vector>

#include "ops/cpu/matmul.h"
#include "ops/cpu/matmul_grad.h"
#include "ops/cpu/vec_math.h"

namespace unmask::train {

namespace {

TensorView panel(const float* data, int64_t rows, int64_t cols) {
  return ops::matrix_view(data, DType::F32, rows, cols);
}

// Per-thread scratch for one (sequence, head): panels [L, hd] and their transposes
// [hd, L], score-sized [L, L] buffers.
struct HeadScratch {
  std::vector<float> q, k, v, o, d_o, kt, qt, vt, dot_t;  // [L*hd]
  std::vector<float> p, dp, t;                              // [L*L]
  std::vector<float> rowdot;                                // [L]
  HeadScratch(int L, int hd) {
    for (auto* b : {&q, &k, &v, &o, &d_o, &kt, &qt, &vt, &dot_t}) b->resize(size_t(L) * size_t(hd));
    for (auto* b : {&p, &dp, &t}) b->resize(size_t(L) * size_t(L));
    rowdot.resize(size_t(L));
  }
};

// dst[i, c] = src[row i of the head] for the head's [L, hd] slice (row stride `stride`).
void gather(const float* src, int64_t stride, int L, int hd, float* dst) {
  for (int i = 0; i < L; ++i)
    for (int c = 0; c < hd; ++c) dst[i * hd + c] = src[i * stride + c];
}
void scatter(const float* src, int64_t stride, int L, int hd, float* dst) {
  for (int i = 0; i < L; ++i)
    for (int c = 0; c < hd; ++c) dst[i * stride + c] = src[i * hd + c];
}
void transpose(const float* src, int rows, int cols, float* dst) { ops::transpose_f32(ops::best_isa(), src, rows, cols, dst); }

// p[L, L] = softmax rows of scale * (Q K^T); lse_out[i] (stride `lse_stride`) when given,
// else p = exp(scale * s - lse[i]) from the stored lse.
void probabilities(HeadScratch& s, int L, int hd, float scale, float* lse_out, const float* lse_in,
                   int64_t lse_stride) {
  ops::matmul(s.q.data(), L, panel(s.k.data(), L, hd), nullptr, s.p.data());
  for (int i = 0; i < L; ++i) {
    float* row = s.p.data() + size_t(i) * size_t(L);
    // exp_f32 (ops/cpu/vec_math.h) on whole rows: SIMD, and within an ulp of libm's.
    if (lse_in) {
      for (int j = 0; j < L; ++j) row[j] *= scale;
      ops::exp_shifted(ops::best_isa(), row, lse_in[i * lse_stride], row, L);
      continue;
    }
    float m = -INFINITY;
    for (int j = 0; j < L; ++j) m = std::max(m, row[j] *= scale);
    ops::exp_shifted(ops::best_isa(), row, m, row, L);
    float sum = 0;
    for (int j = 0; j < L; ++j) sum += row[j];
    const float inv = 1.0f / sum;
    for (int j = 0; j < L; ++j) row[j] *= inv;
    lse_out[i * lse_stride] = m + std::log(sum);
  }
}

// Runs body(scratch, b, h, base) for every (sequence b, head h) pair, base = offset of
// the pair's first element; q, k, v of the pair already gathered into the scratch panels.
template <class Body>
void for_each_head(const float* q, const float* k, const float* v, const AttentionDims& a, Body body) {
  const int L = a.seq_len, hd = a.head_dim;
  const int64_t stride = int64_t(a.heads) * hd;
#pragma omp parallel
  {
    HeadScratch s(L, hd);
#pragma omp for schedule(static) collapse(2)
    for (int b = 0; b < a.batch; ++b)
      for (int h = 0; h < a.heads; ++h) {
        const int64_t base = int64_t(b) * L * stride + int64_t(h) * hd;
        gather(q + base, stride, L, hd, s.q.data());
        gather(k + base, stride, L, hd, s.k.data());
        gather(v + base, stride, L, hd, s.v.data());
        body(s, b, h, base);
      }
  }
}

}  // namespace

void attention_forward_fast(const float* q, const float* k, const float* v, const AttentionDims& a, float* out,
                            float* lse) {
  const int L = a.seq_len, hd = a.head_dim;
  const int64_t stride = int64_t(a.heads) * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  for_each_head(q, k, v, a, [&](HeadScratch& s, int b, int h, int64_t base) {
    transpose(s.v.data(), L, hd, s.vt.data());
    probabilities(s, L, hd, scale, lse + int64_t(b) * L * a.heads + h, nullptr, a.heads);
    ops::matmul(s.p.data(), L, panel(s.vt.data(), hd, L), nullptr, s.o.data());  // P V
    scatter(s.o.data(), stride, L, hd, out + base);
  });
}

void attention_backward_fast(const float* q, const float* k, const float* v, const float* out, const float* lse,
                             const float* dout, const AttentionDims& a, float* dq, float* dk, float* dv) {
  const int L = a.seq_len, hd = a.head_dim;
  const int64_t stride = int64_t(a.heads) * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  for_each_head(q, k, v, a, [&](HeadScratch& s, int b, int h, int64_t base) {
    gather(out + base, stride, L, hd, s.o.data());
    gather(dout + base, stride, L, hd, s.d_o.data());
    probabilities(s, L, hd, scale, nullptr, lse + int64_t(b) * L * a.heads + h, a.heads);
    for (int i = 0; i < L; ++i) s.rowdot[size_t(i)] = dot(s.d_o.data() + i * hd, s.o.data() + i * hd, hd);
    ops::matmul(s.d_o.data(), L, panel(s.v.data(), L, hd), nullptr, s.dp.data());  // dP = dO V^T
    for (int i = 0; i < L; ++i)
      for (int j = 0; j < L; ++j) {
        const size_t ij = size_t(i) * size_t(L) + size_t(j);
        s.dp[ij] = s.p[ij] * (s.dp[ij] - s.rowdot[size_t(i)]) * scale;  // dS, scale folded in
      }
    transpose(s.k.data(), L, hd, s.kt.data());
    ops::matmul(s.dp.data(), L, panel(s.kt.data(), hd, L), nullptr, s.o.data());  // dQ = dS K
    scatter(s.o.data(), stride, L, hd, dq + base);
    transpose(s.dp.data(), L, L, s.t.data());
    transpose(s.q.data(), L, hd, s.qt.data());
    ops::matmul(s.t.data(), L, panel(s.qt.data(), hd, L), nullptr, s.o.data());  // dK = dS^T Q
    scatter(s.o.data(), stride, L, hd, dk + base);
    transpose(s.p.data(), L, L, s.t.data());
    transpose(s.d_o.data(), L, hd, s.dot_t.data());
    ops::matmul(s.t.data(), L, panel(s.dot_t.data(), hd, L), nullptr, s.o.data());  // dV = P^T dO
    scatter(s.o.data(), stride, L, hd, dv + base);
  });
}

}  // namespace unmask::train
