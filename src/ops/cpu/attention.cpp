// Scaled-dot-product attention over row-pointer keys (ops/ops.h): one parallel region
// over (sequence, head) tasks. A task with at most kBlockedKeys keys materialises its
// scores [nq, nk]; a longer one (a long canvas) runs blocked, flash-style: query blocks
// of kQueryBlock rows against key blocks of kKeyBlock keys with an online softmax (running
// max m, sum l, output rescaled by e^(m_old - m_new)), so its working set stays
// [kQueryBlock, kKeyBlock] whatever the canvas length.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/matmul.h"
#include "ops/cpu/vec_math.h"
#include "ops/ops.h"

namespace unmask::ops {

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

// Keys above which a task runs blocked, and the block sizes: a [64, 256] f32 score block
// is 64 KiB (L2), where a 4096-key canvas's full [4096, 4096] scores are 64 MiB per head.
// At most 512 keys the scores of a typical canvas stay in L2 anyway and the direct path's
// one softmax per row is cheaper; results differ between the two paths only by rounding.
constexpr int64_t kBlockedKeys = 512;
constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 256;

// One thread's buffers, sized for the largest task of the call.
struct HeadScratch {
  std::vector<float> qh, kh, scores, oh, pv, row_max, row_sum;
  std::vector<const float*> v_group;
  int64_t loaded = -1;  // job * kv_heads + group whose keys kh / v_group hold (direct path)
};

void copy_rows(const float* const* rows, int64_t n, int64_t offset, int hd, float* dst) {
  for (int64_t r = 0; r < n; ++r) std::copy_n(rows[r] + offset, hd, dst + r * hd);
}

void store_head(const float* o, int64_t nq, int hd, int64_t q_stride, bool bf16, float* out) {
  for (int64_t r = 0; r < nq; ++r) {
    float* dst = out + r * q_stride;
    for (int d = 0; d < hd; ++d) dst[d] = bf16 ? unmask::round_to_bf16(o[r * hd + d]) : o[r * hd + d];
  }
}

// Short key lists: the whole [nq, nk] score matrix, one softmax per row, P·V.
void attend_direct(const AttentionJob& job, int64_t key, int h, int g, int hd, int64_t q_stride, float scale, Isa isa,
                   HeadScratch& s) {
  const int64_t nq = job.nq, nk = job.nk;
  if (key != s.loaded) {
    // kh [nk, hd] for the Q·K^T matmul; V rows are read in place by P·V.
    copy_rows(job.k_rows, nk, int64_t(g) * hd, hd, s.kh.data());
    for (int64_t r = 0; r < nk; ++r) s.v_group[size_t(r)] = job.v_rows[r] + int64_t(g) * hd;
    s.loaded = key;
  }
  for (int64_t r = 0; r < nq; ++r) std::copy_n(job.q + r * q_stride + int64_t(h) * hd, hd, s.qh.data() + r * hd);
  matmul(s.qh.data(), nq, f32_matrix(s.kh.data(), nk, hd), nullptr, s.scores.data());  // [nq, nk]
  if (job.mask.block > 0)
    for (int64_t r = 0; r < nq; ++r)
      for (int64_t j = 0; j < nk; ++j)
        if (!job.mask.visible(r, j)) s.scores[size_t(r * nk + j)] = -INFINITY;  // exp -> exactly 0
  softmax_rows(s.scores.data(), nq, nk, scale);
  weighted_row_sums(isa, WeightedRows{s.scores.data(), nq, nk, s.v_group.data(), nk, hd, s.oh.data(), hd});
}

// Long key lists, flash-style: per query block, key blocks with an online softmax.
// Row r keeps its running max m_r, sum l_r = sum e^(s - m_r) and output o_r = sum
// e^(s - m_r) v; a block whose max exceeds m_r rescales l_r and o_r by e^(m_old - m_new).
// s.oh receives the normalised output o_r / l_r.
void attend_blocked(const AttentionJob& job, int h, int g, int hd, int64_t q_stride, float scale, Isa isa,
                    HeadScratch& s) {
  const int64_t nq = job.nq, nk = job.nk;
  for (int64_t r = 0; r < nk; ++r) s.v_group[size_t(r)] = job.v_rows[r] + int64_t(g) * hd;
  s.loaded = -1;  // kh is reused per key block below
  for (int64_t q0 = 0; q0 < nq; q0 += kQueryBlock) {
    const int64_t qb = std::min(kQueryBlock, nq - q0);
    for (int64_t r = 0; r < qb; ++r)
      std::copy_n(job.q + (q0 + r) * q_stride + int64_t(h) * hd, hd, s.qh.data() + r * hd);
    float* o = s.oh.data() + q0 * hd;  // [qb, hd]
    std::fill(o, o + qb * hd, 0.0f);
    std::fill(s.row_max.begin(), s.row_max.begin() + qb, -INFINITY);
    std::fill(s.row_sum.begin(), s.row_sum.begin() + qb, 0.0f);
    for (int64_t k0 = 0; k0 < nk; k0 += kKeyBlock) {
      const int64_t kb = std::min(kKeyBlock, nk - k0);
      copy_rows(job.k_rows + k0, kb, int64_t(g) * hd, hd, s.kh.data());
      matmul(s.qh.data(), qb, f32_matrix(s.kh.data(), kb, hd), nullptr, s.scores.data());  // [qb, kb]
      for (int64_t r = 0; r < qb; ++r) {
        float* row = s.scores.data() + r * kb;
        float mx = -INFINITY;
        for (int64_t j = 0; j < kb; ++j) {
          row[j] = job.mask.visible(q0 + r, k0 + j) ? row[j] * scale : -INFINITY;
          mx = std::max(mx, row[j]);
        }
        const float m_new = std::max(s.row_max[size_t(r)], mx);
        if (m_new == -INFINITY) {  // nothing visible yet: this block adds nothing
          std::fill(row, row + kb, 0.0f);
          continue;
        }
        const float correction = exp_f32(s.row_max[size_t(r)] - m_new);  // 0 when m_old = -inf
        exp_shifted(isa, row, m_new, row, kb);
        float sum = 0;
        for (int64_t j = 0; j < kb; ++j) sum += row[j];
        s.row_sum[size_t(r)] = s.row_sum[size_t(r)] * correction + sum;
        s.row_max[size_t(r)] = m_new;
        if (correction != 1.0f)
          for (int d = 0; d < hd; ++d) o[r * hd + d] *= correction;
      }
      weighted_row_sums(isa, WeightedRows{s.scores.data(), qb, kb, s.v_group.data() + k0, kb, hd, s.pv.data(), hd});
      for (int64_t i = 0; i < qb * hd; ++i) o[i] += s.pv[size_t(i)];
    }
    for (int64_t r = 0; r < qb; ++r) {
      const float inv = 1.0f / s.row_sum[size_t(r)];
      for (int d = 0; d < hd; ++d) o[r * hd + d] *= inv;
    }
  }
}

}  // namespace

void attention_jobs(const AttentionJob* jobs, int n_jobs, const AttentionShape& shape, bool bf16) {
  const int hd = shape.head_dim;
  const int group = shape.heads / shape.kv_heads;
  const int64_t q_stride = int64_t(shape.heads) * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  int64_t max_nq = 0, max_nk = 0, max_scores = 0, max_key_rows = 0, work = 0;
  for (int j = 0; j < n_jobs; ++j) {
    const int64_t nq = jobs[j].nq, nk = jobs[j].nk;
    max_nq = std::max(max_nq, nq);
    max_nk = std::max(max_nk, nk);
    const bool blocked = nk > kBlockedKeys;
    max_scores = std::max(max_scores, blocked ? std::min(nq, kQueryBlock) * kKeyBlock : nq * nk);
    max_key_rows = std::max(max_key_rows, blocked ? kKeyBlock : nk);
    work += int64_t(shape.heads) * nq * nk * hd;
  }
  if (max_nq <= 0 || max_nk <= 0) return;
  // Every (job, head) pair is a task of ONE parallel region: a batched step's eight small
  // canvases keep both cores busy, where a region per canvas left one spinning between
  // them. Each task's matmuls and softmax run on its own thread; a thread keeps the K/V
  // group it copied last, so consecutive heads of a group share it. The result of a task
  // does not depend on which thread runs it.
  const int64_t tasks = int64_t(n_jobs) * shape.heads;
  const Isa isa = best_isa();
#pragma omp parallel if (work > (int64_t(1) << 16))
  {
    HeadScratch s;
    s.qh.resize(size_t(std::max(max_nq, kQueryBlock) * hd));
    s.kh.resize(size_t(max_key_rows * hd));
    s.scores.resize(size_t(max_scores));
    s.oh.resize(size_t(max_nq * hd));
    s.pv.resize(size_t(kQueryBlock * hd));
    s.row_max.resize(size_t(kQueryBlock));
    s.row_sum.resize(size_t(kQueryBlock));
    s.v_group.resize(size_t(max_nk));
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const AttentionJob& job = jobs[t / shape.heads];
      const int h = int(t % shape.heads), g = h / group;
      if (job.nq <= 0 || job.nk <= 0) continue;
      if (job.nk > kBlockedKeys)
        attend_blocked(job, h, g, hd, q_stride, scale, isa, s);
      else
        attend_direct(job, (t / shape.heads) * shape.kv_heads + g, h, g, hd, q_stride, scale, isa, s);
      store_head(s.oh.data(), job.nq, hd, q_stride, bf16, job.out + int64_t(h) * hd);
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

}  // namespace unmask::ops
