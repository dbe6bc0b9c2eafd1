// The one forward pass shared by every dense family. Family differences are
// flags of ModelConfig (qkv bias, RoPE rounding, logit shift is applied by callers).
//
//   x[n, hidden] = embed[tokens]
//   per layer:  h = rms_norm(x, attn_norm)
//               q,k,v = h·Wq^T (+bq), h·Wk^T (+bk), h·Wv^T (+bv)      [n, H·hd], [n, KV·hd]
//               rope(q), rope(k) at `positions`;  a = attention(q, k, v) per sequence
//               x += a·Wo^T
//               h = rms_norm(x, ffn_norm);  x += (silu(h·Wg^T) * h·Wu^T)·Wd^T
//   final:      h = rms_norm(x, final_norm);  logits[r] = h[logit_rows[r]]·Whead^T
#include <algorithm>
#include <string>
#include <vector>

#include "ops/cpu/matmul.h"
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
  for (int32_t r : b.logit_rows)
    if (r < 0 || r >= n) throw Error("forward: logit row " + std::to_string(r) + " outside [0, " + std::to_string(n) + ")");
}

double matmul_flops(int64_t n, const TensorView& w) { return 2.0 * double(n) * double(w.dim(0)) * double(w.dim(1)); }

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

  out->flops = 0;
  out->weight_bytes = 0;
  auto linear = [&](const float* in, const TensorView& w, const std::vector<float>& bias, float* y) {
    if (batch.reference_precision)
      ops::matmul_reference(in, n, w, bias.empty() ? nullptr : bias.data(), y);
    else
      ops::matmul(in, n, w, bias.empty() ? nullptr : bias.data(), y);
    if (bf16) ops::round_to_bf16(y, n * w.dim(0));
    out->flops += matmul_flops(n, w);
    out->weight_bytes += double(w.nbytes());
  };
  auto to_f32 = [](const TensorView& t, std::vector<float>& dst) {
    dst.clear();
    if (!t.data) return;
    dst.resize(size_t(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) dst[size_t(i)] = load_as_f32(t, i);
  };
  const std::vector<float> no_bias;
  const ops::RopeRounding rope_rounding =
      !bf16 ? ops::RopeRounding::kNone
            : (c.rope_precision == RopePrecision::kF32 ? ops::RopeRounding::kRotateF32 : ops::RopeRounding::kCosSinBf16);
  const ops::RopeParams rope_q{c.n_heads, c.head_dim, c.head_dim, c.rope_theta, rope_rounding};
  const ops::RopeParams rope_k{c.n_kv_heads, c.head_dim, c.head_dim, c.rope_theta, rope_rounding};
  const ops::AttentionShape attn_shape{c.n_heads, c.n_kv_heads, c.head_dim};

  if (batch.capture_hidden) out->hidden.assign(size_t(c.n_layers + 1) * size_t(n * d), 0.0f);
  ops::embedding_lookup(W.embed, batch.tokens.data(), n, x.data());

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = W.layers[size_t(l)];
    if (batch.capture_hidden) std::copy(x.begin(), x.end(), out->hidden.begin() + l * n * d);
    ops::rms_norm(x.data(), n, d, L.attn_norm, c.rms_eps, bf16, h.data());
    to_f32(L.bq, bias_q);
    to_f32(L.bk, bias_k);
    to_f32(L.bv, bias_v);
    linear(h.data(), L.wq, bias_q, q.data());
    linear(h.data(), L.wk, bias_k, k.data());
    linear(h.data(), L.wv, bias_v, v.data());
    ops::rope_neox(q.data(), n, batch.positions.data(), rope_q);
    ops::rope_neox(k.data(), n, batch.positions.data(), rope_k);
    if (batch.reference_precision && !bf16)
      ops::attention_reference(q.data(), k.data(), v.data(), offsets.data(), n_seq, attn_shape, attn.data());
    else
      ops::attention(q.data(), k.data(), v.data(), offsets.data(), n_seq, attn_shape, bf16, attn.data());
    for (int s = 0; s < n_seq; ++s) {
      const double len = offsets[size_t(s) + 1] - offsets[size_t(s)];
      out->flops += 4.0 * len * len * double(q_dim);  // QK^T and PV
    }
    linear(attn.data(), L.wo, no_bias, tmp.data());
    ops::add_inplace(x.data(), tmp.data(), n * d, bf16);

    ops::rms_norm(x.data(), n, d, L.ffn_norm, c.rms_eps, bf16, h.data());
    linear(h.data(), L.w_gate, no_bias, gate.data());
    linear(h.data(), L.w_up, no_bias, up.data());
    ops::silu_mul(gate.data(), up.data(), n * c.ffn, bf16);
    linear(gate.data(), L.w_down, no_bias, tmp.data());
    ops::add_inplace(x.data(), tmp.data(), n * d, bf16);
  }

  ops::rms_norm(x.data(), n, d, W.final_norm, c.rms_eps, bf16, h.data());
  if (batch.capture_hidden) std::copy(h.begin(), h.end(), out->hidden.begin() + c.n_layers * n * d);

  // LM head only on the requested rows.
  const int64_t rows = int64_t(batch.logit_rows.size());
  out->logits.assign(size_t(rows) * size_t(c.vocab), 0.0f);
  if (rows == 0) return;
  std::vector<float> picked(size_t(rows * d));
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(h.data() + int64_t(batch.logit_rows[size_t(r)]) * d, d, picked.data() + r * d);
  if (batch.reference_precision)
    ops::matmul_reference(picked.data(), rows, W.lm_head, nullptr, out->logits.data());
  else
    ops::matmul(picked.data(), rows, W.lm_head, nullptr, out->logits.data());
  if (bf16) ops::round_to_bf16(out->logits.data(), rows * c.vocab);
  out->flops += matmul_flops(rows, W.lm_head);
  out->weight_bytes += double(W.lm_head.nbytes());
}

}  // namespace unmask
