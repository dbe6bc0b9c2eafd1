// Element-wise, normalisation, RoPE and attention ops on f32 activations.
// These are a small fraction of a forward's FLOPs next to the weight matmuls;
// attention routes its two big products through ops::matmul.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/matmul.h"
#include "ops/cpu/vec_math.h"
#include "ops/ops.h"
#include "unmask/quant.h"

namespace unmask::ops {

namespace {
// Element-wise work below this many elements runs on the calling thread: a fork/join costs
// a few microseconds, ~16K simple float ops. Above it both halves of a batched step's rows
// (e.g. 135 rows x 256) are worth a thread each. Results do not depend on it: every element
// is computed the same way on any thread.
constexpr int64_t kParallelElements = 16384;
}  // namespace

void round_to_bf16(float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) x[i] = unmask::round_to_bf16(x[i]);
}

void rms_norm(const float* x, int64_t n, int64_t d, const TensorView& w, float eps, bool bf16, float* y) {
  std::vector<float> weight(static_cast<size_t>(d));
  for (int64_t j = 0; j < d; ++j) weight[size_t(j)] = load_as_f32(w, j);
#pragma omp parallel for schedule(static) if (n * d > kParallelElements)
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    // torch: x.pow(2).mean(-1) in f32; summation order differs by ~1 ulp only.
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += double(xr[j]) * xr[j];
    const float variance = float(ss / double(d));
    const float inv = 1.0f / std::sqrt(variance + eps);
    for (int64_t j = 0; j < d; ++j) {
      float v = xr[j] * inv;
      if (bf16) v = unmask::round_to_bf16(v);
      v *= weight[size_t(j)];
      yr[j] = bf16 ? unmask::round_to_bf16(v) : v;
    }
  }
}

RopeTable rope_table(const int32_t* positions, int64_t n, const RopeParams& p) {
  RopeTable t;
  t.half = p.rotary_dim / 2;
  const size_t half = size_t(t.half);
  // inv_freq exactly as torch: 1 / theta ** (arange(0, dim, 2).float() / dim), in f32.
  std::vector<float> inv_freq(half);
  for (size_t j = 0; j < half; ++j) {
    const float exponent = float(2 * j) / float(p.rotary_dim);
    inv_freq[j] = 1.0f / std::pow(float(p.theta), exponent);
  }
  t.cos.resize(size_t(n) * half);
  t.sin.resize(size_t(n) * half);
#pragma omp parallel for schedule(static) if (n * int64_t(half) > kParallelElements / 8)
  for (int64_t r = 0; r < n; ++r)
    for (size_t j = 0; j < half; ++j) {
      const float angle = float(positions[r]) * inv_freq[j];
      float c = std::cos(angle), s = std::sin(angle);
      if (p.rounding == RopeRounding::kCosSinBf16) {
        c = unmask::round_to_bf16(c);
        s = unmask::round_to_bf16(s);
      }
      t.cos[size_t(r) * half + j] = c;
      t.sin[size_t(r) * half + j] = s;
    }
  return t;
}

void rope_neox(float* x, int64_t n, const RopeTable& t, const RopeParams& p) {
  const int half = t.half;
  const int64_t row_stride = int64_t(p.heads) * p.head_dim;
#pragma omp parallel for schedule(static) if (n * row_stride > kParallelElements)
  for (int64_t r = 0; r < n; ++r) {
    const float* cos_t = t.cos.data() + r * half;
    const float* sin_t = t.sin.data() + r * half;
    for (int h = 0; h < p.heads; ++h) {
      float* v = x + r * row_stride + int64_t(h) * p.head_dim;
      for (int j = 0; j < half; ++j) {
        const float a = v[j], b = v[j + half];
        float lo, hi;
        if (p.rounding == RopeRounding::kCosSinBf16) {
          // q*cos + rotate_half(q)*sin with every bf16 tensor op rounded.
          lo = unmask::round_to_bf16(unmask::round_to_bf16(a * cos_t[j]) + unmask::round_to_bf16(-b * sin_t[j]));
          hi = unmask::round_to_bf16(unmask::round_to_bf16(b * cos_t[j]) + unmask::round_to_bf16(a * sin_t[j]));
        } else {
          lo = a * cos_t[j] - b * sin_t[j];
          hi = b * cos_t[j] + a * sin_t[j];
          if (p.rounding == RopeRounding::kRotateF32) {
            lo = unmask::round_to_bf16(lo);
            hi = unmask::round_to_bf16(hi);
          }
        }
        v[j] = lo;
        v[j + half] = hi;
      }
    }
  }
}

void rope_neox(float* x, int64_t n, const int32_t* positions, const RopeParams& p) {
  rope_neox(x, n, rope_table(positions, n, p), p);
}

namespace {

TensorView f32_matrix(const float* data, int64_t rows, int64_t cols) {
  TensorView t;
  t.data = data;
  t.dtype = DType::F32;
  t.ndim = 2;
  t.shape[0] = rows;
  t.shape[1] = cols;
  return t;
}

// Softmax over each row of s[rows, cols] scaled by `scale`, in place.
void softmax_rows(float* s, int64_t rows, int64_t cols, float scale) {
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * cols;
    float mx = -INFINITY;
    for (int64_t j = 0; j < cols; ++j) {
      row[j] *= scale;
      mx = std::max(mx, row[j]);
    }
    exp_shifted(best_isa(), row, mx, row, cols);
    float sum = 0;
    for (int64_t j = 0; j < cols; ++j) sum += row[j];
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < cols; ++j) row[j] *= inv;
  }
}

}  // namespace

void attention_jobs(const AttentionJob* jobs, int n_jobs, const AttentionShape& shape, bool bf16) {
  const int hd = shape.head_dim;
  const int group = shape.heads / shape.kv_heads;
  const int64_t q_stride = int64_t(shape.heads) * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  int64_t max_nq = 0, max_nk = 0, work = 0;
  for (int j = 0; j < n_jobs; ++j) {
    max_nq = std::max(max_nq, jobs[j].nq);
    max_nk = std::max(max_nk, jobs[j].nk);
    work += int64_t(shape.heads) * jobs[j].nq * jobs[j].nk * hd;
  }
  if (max_nq <= 0 || max_nk <= 0) return;
  // Every (job, head) pair is a task of ONE parallel region: a batched step's eight small
  // canvases keep both cores busy, where a region per canvas left one spinning between
  // them. Each task's matmuls and softmax run on its own thread; a thread keeps the K/V
  // group it transposed last, so consecutive heads of a group share it. The result of a
  // task does not depend on which thread runs it.
  const int64_t tasks = int64_t(n_jobs) * shape.heads;
  const Isa isa = best_isa();
#pragma omp parallel if (work > (int64_t(1) << 16))
  {
    std::vector<float> qh(size_t(max_nq * hd)), kh(size_t(max_nk * hd)), scores(size_t(max_nq * max_nk)),
        oh(size_t(max_nq * hd));
    std::vector<const float*> v_group(static_cast<size_t>(max_nk));
    int64_t loaded = -1;  // job * kv_heads + group held in kh / v_group
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const AttentionJob& job = jobs[t / shape.heads];
      const int h = int(t % shape.heads), g = h / group;
      const int64_t nq = job.nq, nk = job.nk;
      if (nq <= 0 || nk <= 0) continue;
      const int64_t key = (t / shape.heads) * shape.kv_heads + g;
      if (key != loaded) {
        // kh [nk, hd] for the Q·K^T matmul; V rows are read in place by P·V.
        for (int64_t r = 0; r < nk; ++r) {
          std::copy_n(job.k_rows[r] + int64_t(g) * hd, hd, kh.data() + r * hd);
          v_group[size_t(r)] = job.v_rows[r] + int64_t(g) * hd;
        }
        loaded = key;
      }
      for (int64_t r = 0; r < nq; ++r) std::copy_n(job.q + r * q_stride + int64_t(h) * hd, hd, qh.data() + r * hd);
      matmul(qh.data(), nq, f32_matrix(kh.data(), nk, hd), nullptr, scores.data());  // [nq, nk]
      if (job.mask.block > 0)
        for (int64_t r = 0; r < nq; ++r)
          for (int64_t j = 0; j < nk; ++j)
            if (!job.mask.visible(r, j)) scores[size_t(r * nk + j)] = -INFINITY;  // exp -> exactly 0
      softmax_rows(scores.data(), nq, nk, scale);
      weighted_row_sums(isa, WeightedRows{scores.data(), nq, nk, v_group.data(), nk, hd, oh.data(), hd});  // [nq, hd]
      for (int64_t r = 0; r < nq; ++r) {
        float* dst = job.out + r * q_stride + int64_t(h) * hd;
        for (int d = 0; d < hd; ++d)
          dst[d] = bf16 ? unmask::round_to_bf16(oh[size_t(r * hd + d)]) : oh[size_t(r * hd + d)];
      }
    }
  }
}

namespace {

// Row pointers of a contiguous K or V block [n, stride].
std::vector<const float*> contiguous_rows(const float* base, int64_t n, int64_t stride) {
  std::vector<const float*> rows(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) rows[size_t(r)] = base + r * stride;
  return rows;
}

}  // namespace

void attention_seq(const float* q, int64_t nq, const float* k, const float* v, int64_t nk,
                   const AttentionShape& shape, bool bf16, float* out, const AttentionMask& mask) {
  if (nq <= 0 || nk <= 0) return;
  const int64_t kv_stride = int64_t(shape.kv_heads) * shape.head_dim;
  const std::vector<const float*> k_rows = contiguous_rows(k, nk, kv_stride), v_rows = contiguous_rows(v, nk, kv_stride);
  const AttentionJob job{q, nq, k_rows.data(), v_rows.data(), nk, out, mask};
  attention_jobs(&job, 1, shape, bf16);
}

void attention_job_reference(const AttentionJob& job, const AttentionShape& shape) {
  const int hd = shape.head_dim;
  const int group = shape.heads / shape.kv_heads;
  const int64_t q_stride = int64_t(shape.heads) * hd;
  std::vector<double> p(static_cast<size_t>(job.nk));
  for (int64_t i = 0; i < job.nq; ++i)
    for (int h = 0; h < shape.heads; ++h) {
      const float* qi = job.q + i * q_stride + int64_t(h) * hd;
      const int64_t g_off = int64_t(h / group) * hd;
      double mx = -INFINITY;
      for (int64_t j = 0; j < job.nk; ++j) {
        if (!job.mask.visible(i, j)) {
          p[size_t(j)] = -INFINITY;
          continue;
        }
        double dot = 0;
        for (int d = 0; d < hd; ++d) dot += double(qi[d]) * job.k_rows[j][g_off + d];
        p[size_t(j)] = dot / std::sqrt(double(hd));
        mx = std::max(mx, p[size_t(j)]);
      }
      double sum = 0;
      for (auto& x : p) sum += (x = std::exp(x - mx));
      for (int d = 0; d < hd; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < job.nk; ++j) acc += p[size_t(j)] * job.v_rows[j][g_off + d];
        job.out[i * q_stride + int64_t(h) * hd + d] = float(acc / sum);
      }
    }
}

void attention_seq_reference(const float* q, int64_t nq, const float* k, const float* v, int64_t nk,
                             const AttentionShape& shape, float* out, const AttentionMask& mask) {
  const int64_t kv_stride = int64_t(shape.kv_heads) * shape.head_dim;
  const std::vector<const float*> k_rows = contiguous_rows(k, nk, kv_stride), v_rows = contiguous_rows(v, nk, kv_stride);
  attention_job_reference(AttentionJob{q, nq, k_rows.data(), v_rows.data(), nk, out, mask}, shape);
}

void attention(const float* q, const float* k, const float* v, const int32_t* seq_offsets, int n_seq,
               const AttentionShape& shape, bool bf16, float* out) {
  const int64_t q_stride = int64_t(shape.heads) * shape.head_dim, kv_stride = int64_t(shape.kv_heads) * shape.head_dim;
  const int64_t n = seq_offsets[n_seq];
  const std::vector<const float*> k_rows = contiguous_rows(k, n, kv_stride), v_rows = contiguous_rows(v, n, kv_stride);
  std::vector<AttentionJob> jobs(static_cast<size_t>(n_seq));
  for (int s = 0; s < n_seq; ++s) {
    const int64_t b = seq_offsets[s], len = seq_offsets[s + 1] - seq_offsets[s];
    jobs[size_t(s)] = AttentionJob{q + b * q_stride, len, k_rows.data() + b, v_rows.data() + b, len, out + b * q_stride, {}};
  }
  attention_jobs(jobs.data(), n_seq, shape, bf16);
}

void attention_reference(const float* q, const float* k, const float* v, const int32_t* seq_offsets, int n_seq,
                         const AttentionShape& shape, float* out) {
  const int64_t q_stride = int64_t(shape.heads) * shape.head_dim, kv_stride = int64_t(shape.kv_heads) * shape.head_dim;
  for (int s = 0; s < n_seq; ++s) {
    const int64_t b = seq_offsets[s], len = seq_offsets[s + 1] - seq_offsets[s];
    attention_seq_reference(q + b * q_stride, len, k + b * kv_stride, v + b * kv_stride, len, shape,
                            out + b * q_stride);
  }
}

void silu_mul(float* gate, const float* up, int64_t n, bool bf16) {
  // Chunks of whole vectors; every element is computed the same way on any thread.
  constexpr int64_t kChunk = 4096;
  const Isa isa = best_isa();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > kParallelElements)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    silu_mul_rows(isa, gate + begin, up + begin, std::min(kChunk, n - begin), bf16);
  }
}

void add_inplace(float* x, const float* y, int64_t n, bool bf16) {
#pragma omp parallel for schedule(static) if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) x[i] = bf16 ? unmask::round_to_bf16(x[i] + y[i]) : x[i] + y[i];
}

void embedding_lookup(const TensorView& table, const int32_t* ids, int64_t n, float* out) {
  const int64_t d = table.dim(1);
  if (dtype_is_quantized(table.dtype)) {  // GGUF tables: dequantize whole rows of blocks
    for (int64_t r = 0; r < n; ++r) quant::dequantize_row(table.dtype, table.row_bytes(ids[r]), out + r * d, d);
    return;
  }
  for (int64_t r = 0; r < n; ++r) {
    const int64_t base = int64_t(ids[r]) * d;
    for (int64_t j = 0; j < d; ++j) out[r * d + j] = load_as_f32(table, base + j);
  }
}

}  // namespace unmask::ops
