// ops/ops.h — the element-wise / normalisation / attention ops the model forward
// is built from (the matmul lives in ops/cpu/matmul.h). All activations are f32
// buffers owned by the caller; weights are borrowed TensorViews. `bf16` flags
// mimic torch's bf16 inference by rounding results to bf16 where torch's tensors
// would be bf16, so bf16 checkpoints can be compared against bf16 references.
#pragma once
#include <cstdint>
#include <vector>

#include "unmask/tensor.h"

namespace unmask::ops {

// Rounds x[0..n) to the nearest bf16 value, in place.
void round_to_bf16(float* x, int64_t n);

// y[n, d] = normalize(x[n, d]) * w[d]. Normalisation in f32: x * rsqrt(mean(x^2) + eps);
// when bf16, the normalized value is rounded before the weight multiply (HF/OLMo order)
// and the product rounded again.
void rms_norm(const float* x, int64_t n, int64_t d, const TensorView& w, float eps, bool bf16, float* y);

enum class RopeRounding : uint8_t {
  kNone,        // f32 activations
  kRotateF32,   // bf16 activations, rotation in f32, result rounded (LLaDA rope_full_precision)
  kCosSinBf16,  // bf16 activations, cos/sin rounded to bf16, each product rounded (HF Qwen2)
};

// NeoX half-split rotary embedding, in place on x[n, heads, head_dim] (row stride
// heads*head_dim). Only the first rotary_dim dims of each head rotate (partial RoPE).
// inv_freq_j = 1 / theta^(2j / rotary_dim) and angle = pos * inv_freq_j, both in f32 as torch computes them.
struct RopeParams {
  int heads = 0, head_dim = 0, rotary_dim = 0;
  double theta = 10000.0;
  RopeRounding rounding = RopeRounding::kNone;
};
void rope_neox(float* x, int64_t n, const int32_t* positions, const RopeParams& p);

// The rotation's cos / sin per row, [n, rotary_dim / 2] each (rounded to bf16 for
// kCosSinBf16). They depend only on the positions, so a forward computes them once and
// rotates q and k of every layer with them; rope_neox(x, n, positions, p) is
// rope_neox(x, n, rope_table(positions, n, p), p). Owns its vectors.
struct RopeTable {
  int half = 0;
  std::vector<float> cos, sin;
};
RopeTable rope_table(const int32_t* positions, int64_t n, const RopeParams& p);
void rope_neox(float* x, int64_t n, const RopeTable& table, const RopeParams& p);

// Bidirectional scaled-dot-product attention with GQA, per sequence.
// q [n, heads, hd], k/v [n, kv_heads, hd], out [n, heads, hd]; rows of sequence s are
// [seq_offsets[s], seq_offsets[s+1]). Query head h reads kv head h / (heads / kv_heads).
// Computed in f32 (scale 1/sqrt(hd)); when bf16 the output is rounded.
struct AttentionShape {
  int heads = 0, kv_heads = 0, head_dim = 0;
};
void attention(const float* q, const float* k, const float* v, const int32_t* seq_offsets, int n_seq,
               const AttentionShape& shape, bool bf16, float* out);
void attention_reference(const float* q, const float* k, const float* v, const int32_t* seq_offsets, int n_seq,
                         const AttentionShape& shape, float* out);

// Which keys each query sees. block == 0: all of them (bidirectional). block > 0:
// block-causal over absolute positions: key j is visible to query i iff
// k_pos[j] / block <= q_pos[i] / block (SDAR, Fast-dLLM v2, LLaDA2). Borrows q_pos [nq]
// and k_pos [nk]; every query must see at least one key (its own row does).
struct AttentionMask {
  int block = 0;
  const int32_t* q_pos = nullptr;
  const int32_t* k_pos = nullptr;
  bool visible(int64_t i, int64_t j) const { return block == 0 || k_pos[j] / block <= q_pos[i] / block; }
};

// One sequence whose keys are separate rows: q [nq, heads, hd] attends over
// k/v [nk, kv_heads, hd] (e.g. cached K/V plus the fresh rows); out [nq, heads, hd].
void attention_seq(const float* q, int64_t nq, const float* k, const float* v, int64_t nk,
                   const AttentionShape& shape, bool bf16, float* out, const AttentionMask& mask = {});
// One sequence of a batched attention call, keys given as row pointers so cached and
// fresh K/V rows are read where they lie (no gathered copy). All borrowed:
// q [nq, heads, hd]; k_rows[j] / v_rows[j] point at key j's [kv_heads, hd] row (j < nk);
// out [nq, heads, hd]; mask.q_pos [nq], mask.k_pos [nk].
struct AttentionJob {
  const float* q = nullptr;
  int64_t nq = 0;
  const float* const* k_rows = nullptr;
  const float* const* v_rows = nullptr;
  int64_t nk = 0;
  float* out = nullptr;
  AttentionMask mask;
};
// attention_seq for n_jobs sequences at once, every (sequence, head) pair one parallel task.
void attention_jobs(const AttentionJob* jobs, int n_jobs, const AttentionShape& shape, bool bf16);
// Same in double precision, no bf16 rounding (the ground truth).
void attention_job_reference(const AttentionJob& job, const AttentionShape& shape);
void attention_seq_reference(const float* q, int64_t nq, const float* k, const float* v, int64_t nk,
                             const AttentionShape& shape, float* out, const AttentionMask& mask = {});

// gate[i] = silu(gate[i]) * up[i] for i < n (SwiGLU), rounding each step when bf16.
void silu_mul(float* gate, const float* up, int64_t n, bool bf16);

// x[i] += y[i], rounded when bf16 (residual stream).
void add_inplace(float* x, const float* y, int64_t n, bool bf16);

// out[r, :] = table[ids[r], :] as f32, for a [rows, d] F32/BF16/F16 table.
void embedding_lookup(const TensorView& table, const int32_t* ids, int64_t n, float* out);

}  // namespace unmask::ops
