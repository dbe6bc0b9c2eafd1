// The one forward pass shared by every family. Family differences are parameters of
// ModelConfig (qkv bias, QK-norm, partial RoPE and its rounding, attention pattern,
// dense or MoE MLP); the logit shift is applied by callers.
//
//   x[n, hidden] = embed[tokens]
//   per layer:  h = rms_norm(x, attn_norm)
//               q,k,v = h·Wq^T (+bq), h·Wk^T (+bk), h·Wv^T (+bv)      [n, H·hd], [n, KV·hd]
//               qk_norm: q, k = rms_norm per head [n·H, hd] with q_norm / k_norm
//               rope(q), rope(k) on dims [0, rotary_dim) at `positions`
//               a = attention(q, k, v) per sequence (bidirectional or block-causal)
//               x += a·Wo^T
//               h = rms_norm(x, ffn_norm);  x += (silu(h·Wg^T) * h·Wu^T)·Wd^T  (dense layer)
//                                           x += moe_ffn(h)                    (MoE layer, models/moe.cpp)
//   final:      h = rms_norm(x, final_norm);  logits[r] = h[logit_rows[r]]·Whead^T
//
// The last layer carries on past its k/v only the rows the caller reads (logit_rows, or
// all with capture_hidden): a diffusion step asks for the logits of its still-masked
// slots, and every other row's attention output, o-projection and MLP there would be
// thrown away. Each row's arithmetic is the same either way (row-independent kernels).
#include <algorithm>
#include <string>
#include <vector>

#include "models/linear.h"
#include "models/moe.h"
#include "ops/ops.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask {

namespace {

void validate_batch(const ModelConfig& c, const ForwardBatch& b) {
  const int64_t n = int64_t(b.tokens.size());
  if (n == 0) throw Error("forward: empty batch (no tokens)");
  if (int64_t(b.positions.size()) != n)
    throw Error("forward: " + std::to_string(b.positions.size()) + " positions for " + std::to_string(n) + " tokens");
  for (int64_t i = 0; i < n; ++i) {
    if (b.tokens[size_t(i)] < 0 || b.tokens[size_t(i)] >= c.vocab)
      throw Error("forward: token id " + std::to_string(b.tokens[size_t(i)]) + " at row " + std::to_string(i) +
                  " is outside the vocabulary [0, " + std::to_string(c.vocab) + ")");
    if (b.positions[size_t(i)] < 0 || (c.max_context > 0 && b.positions[size_t(i)] >= c.max_context))
      throw Error("forward: position " + std::to_string(b.positions[size_t(i)]) + " at row " + std::to_string(i) +
                  " is outside the model's context of " + std::to_string(c.max_context));
  }
  if (!b.seq_offsets.empty()) {
    if (b.seq_offsets.front() != 0 || b.seq_offsets.back() != n)
      throw Error("forward: seq_offsets must start at 0 and end at the token count");
    for (size_t s = 1; s < b.seq_offsets.size(); ++s)
      if (b.seq_offsets[s] < b.seq_offsets[s - 1]) throw Error("forward: seq_offsets must be non-decreasing");
  }
  if (b.attention_block < -1)
    throw Error("forward: attention_block " + std::to_string(b.attention_block) + " (use -1, 0 or a block size)");
  for (int32_t r : b.logit_rows)
    if (r < 0 || r >= n) throw Error("forward: logit row " + std::to_string(r) + " outside [0, " + std::to_string(n) + ")");
  const size_t n_seq = b.seq_offsets.empty() ? 1 : b.seq_offsets.size() - 1;
  if (!b.kv.empty() && b.kv.size() != n_seq)
    throw Error("forward: " + std::to_string(b.kv.size()) + " kv entries for " + std::to_string(n_seq) + " sequences");
  for (size_t s = 0; s < b.kv.size(); ++s) {
    const SequenceKv& kv = b.kv[s];
    if (!kv.cache) continue;
    if (kv.cache->n_layers != c.n_layers || kv.cache->kv_dim != c.n_kv_heads * c.head_dim)
      throw Error("forward: kv cache of sequence " + std::to_string(s) + " was made for another model");
    for (auto [lo, hi] : kv.read_spans)
      if (lo < 0 || hi < lo || hi > kv.cache->capacity)
        throw Error("forward: cached span [" + std::to_string(lo) + ", " + std::to_string(hi) + ") outside the cache of " +
                    std::to_string(kv.cache->capacity) + " positions");
    if (kv.write) {
      const int32_t lo = b.seq_offsets.empty() ? 0 : b.seq_offsets[s], hi = b.seq_offsets.empty() ? int32_t(n) : b.seq_offsets[s + 1];
      for (int32_t r = lo; r < hi; ++r)
        if (b.positions[size_t(r)] >= kv.cache->capacity)
          throw Error("forward: position " + std::to_string(b.positions[size_t(r)]) + " beyond the kv cache of " +
                      std::to_string(kv.cache->capacity));
    }
  }
}

// Where a sequence's keys come from, in position order: its fresh rows plus its cached
// spans. src[i] >= 0 is a fresh row index into the sequence; src[i] < 0 is cached
// position -1 - src[i]. The same for every layer, so it is built once per forward.
struct KeyOrder {
  std::vector<int32_t> pos;  // [nk]
  std::vector<int64_t> src;  // [nk]
};

KeyOrder key_order(const SequenceKv* kv, const int32_t* positions, int64_t len) {
  std::vector<std::pair<int32_t, int64_t>> order;  // (position, source)
  for (int64_t r = 0; r < len; ++r) order.emplace_back(positions[r], r);
  if (kv)
    for (auto [lo, hi] : kv->read_spans)
      for (int32_t p = lo; p < hi; ++p) order.emplace_back(p, -1 - int64_t(p));
  std::stable_sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.first < b.first; });
  KeyOrder keys;
  for (auto [p, src] : order) {
    keys.pos.push_back(p);
    keys.src.push_back(src);
  }
  return keys;
}

// Row pointers of one layer's keys / values in `order` (fresh rows k/v [len, kv_dim] of
// the sequence, cached rows read in place from the cache).
void key_rows(const KeyOrder& order, const SequenceKv* kv, int layer, const float* k, const float* v, int64_t kv_dim,
              std::vector<const float*>& k_rows, std::vector<const float*>& v_rows) {
  const size_t nk = order.src.size();
  k_rows.resize(nk);
  v_rows.resize(nk);
  for (size_t i = 0; i < nk; ++i) {
    const int64_t src = order.src[i];
    k_rows[i] = src >= 0 ? k + src * kv_dim : kv->cache->k_row(layer, int(-1 - src));
    v_rows[i] = src >= 0 ? v + src * kv_dim : kv->cache->v_row(layer, int(-1 - src));
  }
}

// The sorted, distinct logit rows: what the last layer finishes unless the hidden states
// are captured. (Below the last layer every row feeds the next one's k/v.)
std::vector<int32_t> distinct_rows(std::vector<int32_t> rows) {
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

// Keeps rows `keep` (ascending) of a row-major [.., width] buffer, moved to the front in order.
void keep_rows(float* data, int64_t width, const std::vector<int32_t>& keep) {
  for (size_t i = 0; i < keep.size(); ++i)
    if (int64_t(keep[i]) != int64_t(i)) std::copy_n(data + keep[i] * width, width, data + int64_t(i) * width);
}

}  // namespace

void forward(const Model& model, const ForwardBatch& batch, ForwardOutput* out) {
  const ModelConfig& c = model.config;
  const ModelWeights& W = model.weights;
  validate_batch(c, batch);
  const bool bf16 = model.weight_dtype == DType::BF16;
  const int64_t n = int64_t(batch.tokens.size()), d = c.hidden, hd = c.head_dim;
  const int64_t q_dim = int64_t(c.n_heads) * hd, kv_dim = int64_t(c.n_kv_heads) * hd;
  std::vector<int32_t> offsets = batch.seq_offsets;
  if (offsets.empty()) offsets = {0, int32_t(n)};
  const int n_seq = int(offsets.size()) - 1;

  // Activation buffers, row-major: x/h [n, d], q/attn [n, q_dim], k/v [n, kv_dim], gate/up [n, ffn].
  std::vector<float> x(size_t(n * d)), h(size_t(n * d)), tmp(size_t(n * d));
  std::vector<float> q(size_t(n * q_dim)), k(size_t(n * kv_dim)), v(size_t(n * kv_dim)), attn(size_t(n * q_dim));
  std::vector<float> gate(size_t(n) * size_t(c.ffn)), up(size_t(n) * size_t(c.ffn));
  std::vector<float> bias_q, bias_k, bias_v;
  const int block = batch.attention_block >= 0 ? batch.attention_block : c.attention_block;

  out->flops = 0;
  out->weight_bytes = 0;
  out->expert_bytes = 0;
  out->expert_bytes_token_loop = 0;
  out->router_topk.clear();
  const LinearCall call{bf16, batch.reference_precision};
  auto bias_of = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };
  auto to_f32 = [](const TensorView& t, std::vector<float>& dst) {
    dst.clear();
    if (!t.data) return;
    dst.resize(size_t(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) dst[size_t(i)] = load_as_f32(t, i);
  };
  const ops::RopeRounding rope_rounding =
      !bf16 ? ops::RopeRounding::kNone
            : (c.rope_precision == RopePrecision::kF32 ? ops::RopeRounding::kRotateF32 : ops::RopeRounding::kCosSinBf16);
  const int rotary = c.rotary_dim > 0 ? c.rotary_dim : c.head_dim;
  const ops::RopeParams rope_q{c.n_heads, c.head_dim, rotary, c.rope_theta, rope_rounding};
  const ops::RopeParams rope_k{c.n_kv_heads, c.head_dim, rotary, c.rope_theta, rope_rounding};
  const ops::AttentionShape attn_shape{c.n_heads, c.n_kv_heads, c.head_dim};
  const ops::RopeTable rope = ops::rope_table(batch.positions.data(), n, rope_q);  // rope_k's angles are the same

  // Each sequence's keys: the order once, the row pointers per layer.
  auto seq_kv = [&](int s) -> const SequenceKv* {
    return batch.kv.empty() || !batch.kv[size_t(s)].cache ? nullptr : &batch.kv[size_t(s)];
  };
  std::vector<KeyOrder> orders(static_cast<size_t>(n_seq));
  for (int s = 0; s < n_seq; ++s)
    orders[size_t(s)] = key_order(seq_kv(s), batch.positions.data() + offsets[size_t(s)], offsets[size_t(s) + 1] - offsets[size_t(s)]);
  std::vector<std::vector<const float*>> k_rows(static_cast<size_t>(n_seq)), v_rows(static_cast<size_t>(n_seq));
  std::vector<ops::AttentionJob> jobs(static_cast<size_t>(n_seq));

  if (batch.capture_hidden) out->hidden.assign(size_t(c.n_layers + 1) * size_t(n * d), 0.0f);
  ops::embedding_lookup(W.embed, batch.tokens.data(), n, x.data());

  // Query rows of attention onwards: all n, until the last layer keeps the output rows.
  const std::vector<int32_t> keep = distinct_rows(batch.logit_rows);
  const bool prune = !batch.capture_hidden && int64_t(keep.size()) < n;
  int64_t live = n;
  std::vector<int32_t> q_offsets = offsets, q_positions = batch.positions;

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = W.layers[size_t(l)];
    if (batch.capture_hidden) std::copy(x.begin(), x.end(), out->hidden.begin() + l * n * d);
    ops::rms_norm(x.data(), n, d, L.attn_norm, c.rms_eps, bf16, h.data());
    to_f32(L.bq, bias_q);
    to_f32(L.bk, bias_k);
    to_f32(L.bv, bias_v);
    linear(h.data(), n,
           {{L.wq, bias_of(bias_q), q.data()}, {L.wk, bias_of(bias_k), k.data()}, {L.wv, bias_of(bias_v), v.data()}},
           call, out);
    if (c.qk_norm) {
      ops::rms_norm(q.data(), n * c.n_heads, hd, L.q_norm, c.rms_eps, bf16, q.data());
      ops::rms_norm(k.data(), n * c.n_kv_heads, hd, L.k_norm, c.rms_eps, bf16, k.data());
    }
    ops::rope_neox(q.data(), n, rope, rope_q);
    ops::rope_neox(k.data(), n, rope, rope_k);
    if (prune && l == c.n_layers - 1) {
      // q / x rows [n] -> [live]; k / v keep all n rows (they are the keys of the kept rows).
      keep_rows(q.data(), q_dim, keep);
      keep_rows(x.data(), d, keep);
      live = int64_t(keep.size());
      for (size_t i = 0; i < keep.size(); ++i) q_positions[i] = batch.positions[size_t(keep[i])];
      for (size_t s = 0; s < offsets.size(); ++s)
        q_offsets[s] = int32_t(std::lower_bound(keep.begin(), keep.end(), offsets[s]) - keep.begin());
    }
    // All sequences' attention in one call (one parallel region over sequence x head);
    // queries: rows [q_offsets[s], q_offsets[s+1]), keys: the sequence's n rows + cache.
    int n_jobs = 0;
    for (int s = 0; s < n_seq; ++s) {
      const int64_t begin = offsets[size_t(s)], q_begin = q_offsets[size_t(s)];
      const int64_t q_len = q_offsets[size_t(s) + 1] - q_begin;
      if (q_len == 0) continue;
      key_rows(orders[size_t(s)], seq_kv(s), l, k.data() + begin * kv_dim, v.data() + begin * kv_dim, kv_dim,
               k_rows[size_t(s)], v_rows[size_t(s)]);
      const int64_t nk = int64_t(k_rows[size_t(s)].size());
      jobs[size_t(n_jobs++)] =
          ops::AttentionJob{q.data() + q_begin * q_dim, q_len, k_rows[size_t(s)].data(), v_rows[size_t(s)].data(),
                            nk, attn.data() + q_begin * q_dim,
                            ops::AttentionMask{block, q_positions.data() + q_begin, orders[size_t(s)].pos.data()}};
      out->flops += 4.0 * double(q_len) * double(nk) * double(q_dim);  // QK^T and PV
    }
    if (batch.reference_precision && !bf16) {
      for (int j = 0; j < n_jobs; ++j) ops::attention_job_reference(jobs[size_t(j)], attn_shape);
    } else if (n_jobs > 0) {
      ops::attention_jobs(jobs.data(), n_jobs, attn_shape, bf16);
    }
    for (int s = 0; s < n_seq; ++s) {
      const SequenceKv* kv = seq_kv(s);
      if (!kv || !kv->write) continue;
      for (int64_t r = offsets[size_t(s)]; r < offsets[size_t(s) + 1]; ++r) {
        const int pos = batch.positions[size_t(r)];
        std::copy_n(k.data() + r * kv_dim, kv_dim, kv->cache->k_row(l, pos));
        std::copy_n(v.data() + r * kv_dim, kv_dim, kv->cache->v_row(l, pos));
      }
    }
    if (live == 0) break;  // nothing read past this layer's k/v (a store-only call)
    linear(attn.data(), live, {{L.wo, nullptr, tmp.data()}}, call, out);
    ops::add_inplace(x.data(), tmp.data(), live * d, bf16);

    ops::rms_norm(x.data(), live, d, L.ffn_norm, c.rms_eps, bf16, h.data());
    if (c.moe.is_moe_layer(l)) {
      moe_ffn(c, L, h.data(), live, call, tmp.data(), out);
    } else {
      linear(h.data(), live, {{L.w_gate, nullptr, gate.data()}, {L.w_up, nullptr, up.data()}}, call, out);
      ops::silu_mul(gate.data(), up.data(), live * c.ffn, bf16);
      linear(gate.data(), live, {{L.w_down, nullptr, tmp.data()}}, call, out);
    }
    ops::add_inplace(x.data(), tmp.data(), live * d, bf16);
  }

  // LM head only on the requested rows; x holds rows `keep` when live < n.
  const int64_t rows = int64_t(batch.logit_rows.size());
  out->logits.assign(size_t(rows) * size_t(c.vocab), 0.0f);
  if (live == 0) return;
  ops::rms_norm(x.data(), live, d, W.final_norm, c.rms_eps, bf16, h.data());
  if (batch.capture_hidden) std::copy(h.begin(), h.end(), out->hidden.begin() + c.n_layers * n * d);
  if (rows == 0) return;
  std::vector<float> picked(size_t(rows * d));
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t row = batch.logit_rows[size_t(r)];
    const int64_t at = live == n ? row : std::lower_bound(keep.begin(), keep.end(), row) - keep.begin();
    std::copy_n(h.data() + at * d, d, picked.data() + r * d);
  }
  linear(picked.data(), rows, {{W.lm_head, nullptr, out->logits.data()}}, call, out);
}

void KvCache::reset(const ModelConfig& config, int positions) {
  n_layers = config.n_layers;
  kv_dim = config.n_kv_heads * config.head_dim;
  capacity = positions;
  const size_t count = size_t(n_layers) * size_t(capacity) * size_t(kv_dim);
  k.assign(count, 0.0f);
  v.assign(count, 0.0f);
}

}  // namespace unmask
