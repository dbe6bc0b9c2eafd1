// train/blocks.h — forward and hand-written backward of the model's non-matmul blocks
// (embedding, RMSNorm, NeoX RoPE, bidirectional attention, SwiGLU, softmax cross-entropy),
// templated on the element type: float for training, double for the finite-difference
// tests (tests/test_train_blocks.cpp). The weight matmuls and their gradients live in
// ops/cpu/matmul*.h.
//
// Layouts: activations are row-major [n, d] with n = batch * seq_len rows; a row of q/k/v
// is [heads, head_dim]. Every buffer is the caller's; backward functions either overwrite
// their outputs or add to them, as each comment says. All functions are deterministic for
// a fixed OpenMP thread count (per-thread partial sums are combined in thread order).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "ops/cpu/vec_math.h"

namespace unmask::train {

// ---- embedding ----

// out[r, :] = table[ids[r], :]
template <class T>
void embedding_forward(const T* table, const int32_t* ids, int64_t n, int64_t d, T* out) {
#pragma omp parallel for schedule(static) if (n * d > 65536)
  for (int64_t r = 0; r < n; ++r) std::memcpy(out + r * d, table + int64_t(ids[r]) * d, size_t(d) * sizeof(T));
}

// dtable[ids[r], :] += dout[r, :]. Thread t owns the ids with id % threads == t, so rows
// with the same id are added by one thread in row order (no races, fixed order).
template <class T>
void embedding_backward(const T* dout, const int32_t* ids, int64_t n, int64_t d, T* dtable) {
#pragma omp parallel if (n * d > 65536)
  {
    const int threads = omp_get_num_threads(), me = omp_get_thread_num();
    for (int64_t r = 0; r < n; ++r) {
      if (ids[r] % threads != me) continue;
      T* dst = dtable + int64_t(ids[r]) * d;
      const T* src = dout + r * d;
      for (int64_t c = 0; c < d; ++c) dst[c] += src[c];
    }
  }
}

// ---- RMSNorm: y = x * r * w, r = 1 / sqrt(mean(x^2) + eps) ----

// y [n, d], rstd [n] (r per row, kept for the backward). Row sums in double.
template <class T>
void rmsnorm_forward(const T* x, const T* w, int64_t n, int64_t d, double eps, T* y, T* rstd) {
#pragma omp parallel for schedule(static) if (n * d > 16384)
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * d;
    double ss = 0;
    for (int64_t c = 0; c < d; ++c) ss += double(xr[c]) * double(xr[c]);
    const T rs = T(1.0 / std::sqrt(ss / double(d) + eps));
    rstd[r] = rs;
    for (int64_t c = 0; c < d; ++c) y[r * d + c] = xr[c] * rs * w[c];
  }
}

// dx [n, d] += dL/dx; dw [d] += dL/dw.
//   dx_c = r (w_c dy_c) - r^3 / d * x_c * sum_k w_k dy_k x_k
//   dw_c = sum_rows dy_c x_c r
template <class T>
void rmsnorm_backward(const T* x, const T* w, const T* rstd, const T* dy, int64_t n, int64_t d, T* dx, T* dw) {
  const int threads = n * d > 16384 ? omp_get_max_threads() : 1;
  std::vector<T> partial(size_t(threads) * size_t(d), T(0));  // per-thread dw sums
#pragma omp parallel num_threads(threads)
  {
    T* my_dw = partial.data() + size_t(omp_get_thread_num()) * size_t(d);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const T *xr = x + r * d, *dyr = dy + r * d;
      const T rs = rstd[r];
      double dot = 0;
      for (int64_t c = 0; c < d; ++c) dot += double(w[c]) * double(dyr[c]) * double(xr[c]);
      const T coef = T(double(rs) * double(rs) * double(rs) * dot / double(d));
      for (int64_t c = 0; c < d; ++c) {
        dx[r * d + c] += rs * w[c] * dyr[c] - coef * xr[c];
        my_dw[c] += dyr[c] * xr[c] * rs;
      }
    }
  }
  for (int t = 0; t < threads; ++t)
    for (int64_t c = 0; c < d; ++c) dw[c] += partial[size_t(t) * size_t(d) + size_t(c)];
}

// ---- NeoX RoPE ----

// cos/sin [seq_len, head_dim / 2] for positions 0..seq_len-1. For float, angles and
// cos/sin are computed in f32 exactly as the inference op (ops::rope_neox) does, so a
// trained model sees the same rotation at inference; for double, in double.
template <class T>
struct RopeTable {
  int seq_len = 0, half = 0;
  std::vector<T> cos, sin;
};

template <class T>
RopeTable<T> make_rope_table(int seq_len, int head_dim, double theta) {
  RopeTable<T> t;
  t.seq_len = seq_len;
  t.half = head_dim / 2;
  t.cos.resize(size_t(seq_len) * size_t(t.half));
  t.sin.resize(t.cos.size());
  for (int j = 0; j < t.half; ++j) {
    const T exponent = T(2 * j) / T(head_dim);
    const T inv_freq = T(1) / std::pow(T(theta), exponent);
    for (int p = 0; p < seq_len; ++p) {
      const T angle = T(p) * inv_freq;
      t.cos[size_t(p) * size_t(t.half) + size_t(j)] = std::cos(angle);
      t.sin[size_t(p) * size_t(t.half) + size_t(j)] = std::sin(angle);
    }
  }
  return t;
}

// Rotates x [n, heads, head_dim] in place; row r is at position r % seq_len. The
// rotation is orthogonal, so its backward is the inverse rotation (`inverse`: angle -> -angle).
template <class T>
void rope_apply(T* x, int64_t n, int heads, int head_dim, const RopeTable<T>& table, bool inverse) {
  const int half = table.half;
  const T sign = inverse ? T(-1) : T(1);
#pragma omp parallel for schedule(static) if (n * heads * head_dim > 65536)
  for (int64_t r = 0; r < n; ++r) {
    const T* cs = table.cos.data() + size_t(r % table.seq_len) * size_t(half);
    const T* sn = table.sin.data() + size_t(r % table.seq_len) * size_t(half);
    for (int h = 0; h < heads; ++h) {
      T* v = x + (r * heads + h) * head_dim;
      for (int j = 0; j < half; ++j) {
        const T a = v[j], b = v[j + half], s = sign * sn[j];
        v[j] = a * cs[j] - b * s;
        v[j + half] = b * cs[j] + a * s;
      }
    }
  }
}

// ---- bidirectional multi-head attention, per sequence ----

struct AttentionDims {
  int batch = 0, seq_len = 0, heads = 0, head_dim = 0;
};

template <class T>
T dot(const T* a, const T* b, int n) {
  T s = 0;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// q, k, v, out [batch * seq_len, heads, head_dim]; lse [batch * seq_len, heads] =
// log sum_j exp(score_ij), kept so the backward recomputes the probabilities instead of
// storing [heads, seq_len, seq_len] per sequence. Scale 1/sqrt(head_dim).
template <class T>
void attention_forward(const T* q, const T* k, const T* v, const AttentionDims& a, T* out, T* lse) {
  const int L = a.seq_len, hd = a.head_dim;
  const int64_t stride = int64_t(a.heads) * hd;
  const T scale = T(1) / std::sqrt(T(hd));
  const bool threaded = int64_t(a.batch) * a.heads * L * L * hd > 65536;  // else fork/join costs more
#pragma omp parallel if (threaded)
  {
    std::vector<T> p(static_cast<size_t>(L));
#pragma omp for schedule(static) collapse(2)
    for (int b = 0; b < a.batch; ++b)
      for (int h = 0; h < a.heads; ++h) {
        const int64_t base = int64_t(b) * L * stride + int64_t(h) * hd;
        for (int i = 0; i < L; ++i) {
          const T* qi = q + base + i * stride;
          T m = -INFINITY;
          for (int j = 0; j < L; ++j) {
            p[size_t(j)] = scale * dot(qi, k + base + j * stride, hd);
            m = std::max(m, p[size_t(j)]);
          }
          T sum = 0;
          for (int j = 0; j < L; ++j) sum += p[size_t(j)] = std::exp(p[size_t(j)] - m);
          T* oi = out + base + i * stride;
          std::fill(oi, oi + hd, T(0));
          const T inv = T(1) / sum;
          for (int j = 0; j < L; ++j) {
            const T pj = p[size_t(j)] * inv;
            const T* vj = v + base + j * stride;
            for (int c = 0; c < hd; ++c) oi[c] += pj * vj[c];
          }
          lse[(int64_t(b) * L + i) * a.heads + h] = m + std::log(sum);
        }
      }
  }
}

// Overwrites dq, dk, dv [batch * seq_len, heads, head_dim]. With P the probabilities:
//   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dO * O)),  dQ = s dS K,  dK = s dS^T Q.
template <class T>
void attention_backward(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout,
                        const AttentionDims& a, T* dq, T* dk, T* dv) {
  const int L = a.seq_len, hd = a.head_dim;
  const int64_t stride = int64_t(a.heads) * hd;
  const T scale = T(1) / std::sqrt(T(hd));
  const bool threaded = int64_t(a.batch) * a.heads * L * L * hd > 65536;
#pragma omp parallel for schedule(static) collapse(2) if (threaded)
  for (int b = 0; b < a.batch; ++b)
    for (int h = 0; h < a.heads; ++h) {
      const int64_t base = int64_t(b) * L * stride + int64_t(h) * hd;
      for (int j = 0; j < L; ++j) {
        std::fill(dk + base + j * stride, dk + base + j * stride + hd, T(0));
        std::fill(dv + base + j * stride, dv + base + j * stride + hd, T(0));
      }
      for (int i = 0; i < L; ++i) {
        const T *qi = q + base + i * stride, *doi = dout + base + i * stride;
        const T D = dot(doi, out + base + i * stride, hd);
        const T li = lse[(int64_t(b) * L + i) * a.heads + h];
        T* dqi = dq + base + i * stride;
        std::fill(dqi, dqi + hd, T(0));
        for (int j = 0; j < L; ++j) {
          const T *kj = k + base + j * stride, *vj = v + base + j * stride;
          const T p = std::exp(scale * dot(qi, kj, hd) - li);
          const T ds = p * (dot(doi, vj, hd) - D) * scale;
          T *dkj = dk + base + j * stride, *dvj = dv + base + j * stride;
          for (int c = 0; c < hd; ++c) {
            dqi[c] += ds * kj[c];
            dkj[c] += ds * qi[c];
            dvj[c] += p * doi[c];
          }
        }
      }
    }
}

// ---- SwiGLU: s = silu(g) * u ----

template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// sig[0:len] = sigmoid(g[0:len]): SIMD exp_f32 for float (ops::sigmoid_rows), std::exp
// for double (the finite-difference checks).
template <class T>
void sigmoid_chunk(const T* g, int64_t len, T* sig) {
  if constexpr (std::is_same_v<T, float>)
    ops::sigmoid_rows(ops::best_isa(), g, sig, len);
  else
    for (int64_t i = 0; i < len; ++i) sig[i] = sigmoid(g[i]);
}

// Element-wise body(i0, len, sig) over chunks of 1024 with sig = sigmoid(g[i0 : i0+len]).
template <class T, class Body>
void for_sigmoid_chunks(const T* g, int64_t n, Body body) {
  constexpr int64_t kChunk = 1024;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t c = 0; c < chunks; ++c) {
    T sig[kChunk];
    const int64_t i0 = c * kChunk, len = std::min(kChunk, n - i0);
    sigmoid_chunk(g + i0, len, sig);
    body(i0, len, sig);
  }
}

template <class T>
void swiglu_forward(const T* g, const T* u, int64_t n, T* s) {
  for_sigmoid_chunks(g, n, [&](int64_t i0, int64_t len, const T* sig) {
    for (int64_t j = 0; j < len; ++j) s[i0 + j] = g[i0 + j] * sig[j] * u[i0 + j];
  });
}

// Overwrites dg, du: dg = ds u sig(g) (1 + g (1 - sig(g))), du = ds silu(g).
template <class T>
void swiglu_backward(const T* g, const T* u, const T* ds, int64_t n, T* dg, T* du) {
  for_sigmoid_chunks(g, n, [&](int64_t i0, int64_t len, const T* sig) {
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = i0 + j;
      const T sg = sig[j];
      du[i] = ds[i] * g[i] * sg;
      dg[i] = ds[i] * u[i] * sg * (T(1) + g[i] * (T(1) - sg));
    }
  });
}

// ---- softmax cross-entropy over the vocabulary ----

// logits [rows, vocab]; returns sum_r weight[r] * (logsumexp(logits_r) - logits_r[target_r])
// (accumulated in double, in row order). When `grad`, overwrites logits with
// dL/dlogits = weight[r] * (softmax(logits_r) - onehot(target_r)).
// For T = float one SIMD pass (ops::exp_shifted_sum: exp_f32, within an ulp of libm's)
// gives e = exp(z - max) and its float64 sum S; the gradient is e * (weight / S), so the
// vocabulary is exponentiated once per row. T = double (the finite-difference checks)
// keeps std::exp and the plain loops.
template <class T>
double cross_entropy(T* logits, int64_t rows, int64_t vocab, const int32_t* targets, const T* weight, bool grad) {
  std::vector<double> row_loss(static_cast<size_t>(rows));
  const ops::Isa isa = ops::best_isa();
#pragma omp parallel if (rows * vocab > 65536)
  {
    std::vector<T> e(static_cast<size_t>(vocab));  // e^(z - m) of one row, when not in place
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      T* z = logits + r * vocab;
      const T z_target = z[targets[r]];
      const T w = weight[r];
      if constexpr (std::is_same_v<T, float>) {
        const float m = ops::max_value(isa, z, vocab);
        float* out = grad ? z : e.data();
        const double sum = ops::exp_shifted_sum(isa, z, m, out, vocab);
        row_loss[size_t(r)] = double(w) * (double(m) + std::log(sum) - double(z_target));
        if (!grad) continue;
        const float scale = float(double(w) / sum);
        for (int64_t c = 0; c < vocab; ++c) z[c] *= scale;
      } else {
        T m = -INFINITY;
        for (int64_t c = 0; c < vocab; ++c) m = std::max(m, z[c]);
        double sum = 0;
        for (int64_t c = 0; c < vocab; ++c) sum += double(e[size_t(c)] = std::exp(z[c] - m));
        const double lse = double(m) + std::log(sum);
        row_loss[size_t(r)] = double(w) * (lse - double(z_target));
        if (!grad) continue;
        for (int64_t c = 0; c < vocab; ++c) z[c] = std::exp(z[c] - T(lse)) * w;
      }
      z[targets[r]] -= w;
    }
  }
  double total = 0;
  for (double l : row_loss) total += l;
  return total;
}

}  // namespace unmask::train
