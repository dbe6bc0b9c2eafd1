// train/step.cpp — the training forward (keeping the activations the backward needs)
// and the hand-written backward of the whole llada model.
//
// Per layer, with N = batch * seq_len rows, D = hidden, F = ffn:
//   h  = rmsnorm(x) * attn_norm                      [N, D]
//   q, k, v = h Wq^T, h Wk^T, h Wv^T; q, k rotated   [N, D]
//   a  = attention(q, k, v) per sequence              [N, D]   (lse [N, heads] kept)
//   x1 = x + a Wo^T
//   h2 = rmsnorm(x1) * ffn_norm
//   s  = silu(h2 Wg^T) * (h2 Wu^T)                    [N, F]
//   x' = x1 + s Wd^T
// Head: hf = rmsnorm(x_L) * ln_f; the LM head and cross-entropy run only on scored
// (masked) rows, head_chunk_rows at a time, so [rows, vocab] probabilities exist for one
// chunk only; the chunk's logit gradient is turned into dhf and dW_head right away.
#include <cstring>

#include "ops/cpu/matmul.h"
#include "ops/cpu/matmul_grad.h"
#include "train/attention.h"
#include "train/blocks.h"
#include "train/model.h"
#include "unmask/error.h"

namespace unmask::train {

namespace {
struct LayerActs {
  std::vector<float> x, h, rstd1, q, k, v, att, lse, x1, h2, rstd2, g, u, s;
};
}  // namespace

struct Workspace {
  int rows = 0, seq_len = 0;
  std::vector<LayerActs> layers;
  std::vector<float> xf, hf, rstdf;        // final residual, its norm, rstd
  std::vector<float> tmp, dx, dx1, dh;     // [N, D] scratch
  std::vector<float> dq, dk, dv, datt;     // [N, D]
  std::vector<float> ds, dg, du;           // [N, F]
  std::vector<float> head_in, logits, dhead_in;  // one chunk of scored rows
  std::vector<uint16_t> bf16_params;       // bf16 copy of the matrices (BF16 compute)
  RopeTable<float> rope;
  int rope_head_dim = 0;
};

void WorkspaceDeleter::operator()(Workspace* w) const { delete w; }
WorkspacePtr make_workspace() { return WorkspacePtr(new Workspace()); }

namespace {

void size_workspace(Workspace& ws, const ModelShape& s, int batch, int seq_len) {
  const size_t n = size_t(batch) * size_t(seq_len), d = size_t(s.hidden), f = size_t(s.ffn);
  const size_t heads = size_t(s.heads);
  if (ws.rows != int(n) || ws.layers.size() != size_t(s.layers)) {
    ws.layers.resize(size_t(s.layers));
    for (LayerActs& a : ws.layers) {
      for (auto* v : {&a.x, &a.h, &a.q, &a.k, &a.v, &a.att, &a.x1, &a.h2}) v->resize(n * d);
      for (auto* v : {&a.g, &a.u, &a.s}) v->resize(n * f);
      a.rstd1.resize(n);
      a.rstd2.resize(n);
      a.lse.resize(n * heads);
    }
    for (auto* v : {&ws.xf, &ws.hf, &ws.tmp, &ws.dx, &ws.dx1, &ws.dh, &ws.dq, &ws.dk, &ws.dv, &ws.datt})
      v->resize(n * d);
    for (auto* v : {&ws.ds, &ws.dg, &ws.du}) v->resize(n * f);
    ws.rstdf.resize(n);
    ws.rows = int(n);
  }
  const int hd = s.hidden / s.heads;
  if (ws.seq_len != seq_len || ws.rope_head_dim != hd) {
    ws.rope = make_rope_table<float>(seq_len, hd, s.rope_theta);
    ws.seq_len = seq_len;
    ws.rope_head_dim = hd;
  }
}

// The matmul weights as the kernels see them: f32 params, or their bf16 copy.
struct Weights {
  const ParamLayout& layout;
  const float* params;
  const uint16_t* bf16;  // null for F32 compute
  TensorView matrix(const float* p, int64_t rows, int64_t cols) const {
    TensorView v;
    v.ndim = 2;
    v.shape = {rows, cols, 0, 0};
    if (bf16) {
      v.dtype = DType::BF16;
      v.data = bf16 + (p - params);
    } else {
      v.dtype = DType::F32;
      v.data = p;
    }
    return v;
  }
};

void add_into(float* dst, const float* a, const float* b, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; ++i) dst[i] = a[i] + b[i];
}

}  // namespace

StepResult forward_backward(const ParamLayout& layout, const float* params, const TrainBatch& batch,
                            const StepOptions& options, Workspace& ws, float* grads) {
  const ModelShape& s = layout.shape;
  const int B = batch.batch, L = batch.seq_len, D = s.hidden, F = s.ffn, V = s.vocab, H = s.heads;
  const int64_t N = int64_t(B) * L;
  check(B > 0 && L > 0, "training batch: batch and seq_len must be positive");
  check(batch.input.size() == size_t(N) && batch.target.size() == size_t(N) && batch.weight.size() == size_t(N),
        "training batch: input/target/weight must have batch*seq_len entries");
  for (int64_t i = 0; i < N; ++i)
    check(batch.input[size_t(i)] >= 0 && batch.input[size_t(i)] < V && batch.target[size_t(i)] >= 0 &&
              batch.target[size_t(i)] < V,
          "training batch: token id at row " + std::to_string(i) + " is outside the vocabulary of " +
              std::to_string(V));
  check(options.compute == DType::F32 || options.compute == DType::BF16, "training: compute dtype must be F32 or BF16");
  size_workspace(ws, s, B, L);
  const ModelTensors<const float> P = bind_tensors(layout, params);
  const bool bf16 = options.compute == DType::BF16;
  if (bf16) {
    ws.bf16_params.resize(layout.total);
    for (const TensorSlot& slot : layout.slots)
      if (slot.decay)
        for (size_t i = 0; i < slot.numel; ++i) ws.bf16_params[slot.offset + i] = f32_to_bf16(params[slot.offset + i]);
  }
  const Weights W{layout, params, bf16 ? ws.bf16_params.data() : nullptr};
  const AttentionDims adims{B, L, H, D / H};
  const size_t nd = size_t(N) * size_t(D), nf = size_t(N) * size_t(F);
  StepResult result;
  const double matmul_flops = 2.0 * double(N) * (4.0 * D * D + 3.0 * double(D) * F) * s.layers;
  const double attn_flops = 4.0 * double(B) * H * double(L) * L * (D / H) * s.layers;

  // ---- forward ----
  embedding_forward(P.embed, batch.input.data(), N, D, ws.layers[0].x.data());
  for (int l = 0; l < s.layers; ++l) {
    LayerActs& A = ws.layers[size_t(l)];
    const LayerTensors<const float>& T = P.layers[size_t(l)];
    rmsnorm_forward(A.x.data(), T.attn_norm, N, D, s.rms_eps, A.h.data(), A.rstd1.data());
    ops::linear_forward(A.h.data(), N, W.matrix(T.wq, D, D), A.q.data());
    ops::linear_forward(A.h.data(), N, W.matrix(T.wk, D, D), A.k.data());
    ops::linear_forward(A.h.data(), N, W.matrix(T.wv, D, D), A.v.data());
    rope_apply(A.q.data(), N, H, D / H, ws.rope, false);
    rope_apply(A.k.data(), N, H, D / H, ws.rope, false);
    attention_forward_fast(A.q.data(), A.k.data(), A.v.data(), adims, A.att.data(), A.lse.data());
    ops::linear_forward(A.att.data(), N, W.matrix(T.wo, D, D), ws.tmp.data());
    add_into(A.x1.data(), A.x.data(), ws.tmp.data(), nd);
    rmsnorm_forward(A.x1.data(), T.ffn_norm, N, D, s.rms_eps, A.h2.data(), A.rstd2.data());
    ops::linear_forward(A.h2.data(), N, W.matrix(T.w_gate, F, D), A.g.data());
    ops::linear_forward(A.h2.data(), N, W.matrix(T.w_up, F, D), A.u.data());
    swiglu_forward(A.g.data(), A.u.data(), int64_t(nf), A.s.data());
    ops::linear_forward(A.s.data(), N, W.matrix(T.w_down, D, F), ws.tmp.data());
    float* next = l + 1 < s.layers ? ws.layers[size_t(l) + 1].x.data() : ws.xf.data();
    add_into(next, A.x1.data(), ws.tmp.data(), nd);
  }
  rmsnorm_forward(ws.xf.data(), P.final_norm, N, D, s.rms_eps, ws.hf.data(), ws.rstdf.data());

  // ---- LM head + cross-entropy on scored rows, chunked ----
  std::vector<int32_t> scored;
  for (int64_t i = 0; i < N; ++i)
    if (batch.weight[size_t(i)] != 0.0f) scored.push_back(int32_t(i));
  const bool backward = grads != nullptr;
  ModelTensors<float> G{};
  if (backward) {
    std::memset(grads, 0, layout.total * sizeof(float));
    G = bind_tensors(layout, grads);
    std::fill(ws.dh.begin(), ws.dh.end(), 0.0f);  // dL/dhf, filled on scored rows
  }
  const int chunk = std::max(1, options.head_chunk_rows);
  const TensorView head = W.matrix(P.lm_head, V, D);
  for (size_t c0 = 0; c0 < scored.size(); c0 += size_t(chunk)) {
    const int64_t R = int64_t(std::min(scored.size() - c0, size_t(chunk)));
    ws.head_in.resize(size_t(R) * size_t(D));
    ws.logits.resize(size_t(R) * size_t(V));
    std::vector<int32_t> targets(static_cast<size_t>(R));
    std::vector<float> weights(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) {
      const int32_t row = scored[c0 + size_t(r)];
      std::memcpy(ws.head_in.data() + r * D, ws.hf.data() + int64_t(row) * D, size_t(D) * sizeof(float));
      targets[size_t(r)] = batch.target[size_t(row)];
      weights[size_t(r)] = batch.weight[size_t(row)];
    }
    ops::linear_forward(ws.head_in.data(), R, head, ws.logits.data());
    result.loss += cross_entropy(ws.logits.data(), R, V, targets.data(), weights.data(), backward);
    if (!backward) continue;
    ws.dhead_in.resize(size_t(R) * size_t(D));
    ops::matmul_dx(ws.logits.data(), R, head, ws.dhead_in.data(), false);
    ops::matmul_dw(ws.logits.data(), ws.head_in.data(), R, V, D, options.compute, G.lm_head, c0 > 0);
    for (int64_t r = 0; r < R; ++r)
      std::memcpy(ws.dh.data() + int64_t(scored[c0 + size_t(r)]) * D, ws.dhead_in.data() + r * D,
                  size_t(D) * sizeof(float));
  }
  const double head_flops = 2.0 * double(scored.size()) * D * V;
  result.flops = matmul_flops + attn_flops + head_flops;
  if (!backward) return result;
  result.flops += 2.0 * (matmul_flops + head_flops) + 2.5 * attn_flops;

  // ---- backward ----
  std::fill(ws.dx.begin(), ws.dx.end(), 0.0f);
  rmsnorm_backward(ws.xf.data(), P.final_norm, ws.rstdf.data(), ws.dh.data(), N, D, ws.dx.data(), G.final_norm);
  const DType cd = options.compute;
  for (int l = s.layers - 1; l >= 0; --l) {
    LayerActs& A = ws.layers[size_t(l)];
    const LayerTensors<const float>& T = P.layers[size_t(l)];
    const LayerTensors<float>& GT = G.layers[size_t(l)];
    // ws.dx = dL/d(layer output); the residual passes it to x1 unchanged.
    ws.dx1 = ws.dx;
    ops::matmul_dx(ws.dx.data(), N, W.matrix(T.w_down, D, F), ws.ds.data(), false);
    ops::matmul_dw(ws.dx.data(), A.s.data(), N, D, F, cd, GT.w_down, false);
    swiglu_backward(A.g.data(), A.u.data(), ws.ds.data(), int64_t(nf), ws.dg.data(), ws.du.data());
    ops::matmul_dx(ws.dg.data(), N, W.matrix(T.w_gate, F, D), ws.dh.data(), false);
    ops::matmul_dx(ws.du.data(), N, W.matrix(T.w_up, F, D), ws.dh.data(), true);
    ops::matmul_dw(ws.dg.data(), A.h2.data(), N, F, D, cd, GT.w_gate, false);
    ops::matmul_dw(ws.du.data(), A.h2.data(), N, F, D, cd, GT.w_up, false);
    rmsnorm_backward(A.x1.data(), T.ffn_norm, A.rstd2.data(), ws.dh.data(), N, D, ws.dx1.data(), GT.ffn_norm);
    // ws.dx1 = dL/dx1; it reaches x through the residual and through attention.
    ops::matmul_dx(ws.dx1.data(), N, W.matrix(T.wo, D, D), ws.datt.data(), false);
    ops::matmul_dw(ws.dx1.data(), A.att.data(), N, D, D, cd, GT.wo, false);
    attention_backward_fast(A.q.data(), A.k.data(), A.v.data(), A.att.data(), A.lse.data(), ws.datt.data(), adims,
                            ws.dq.data(), ws.dk.data(), ws.dv.data());
    rope_apply(ws.dq.data(), N, H, D / H, ws.rope, true);
    rope_apply(ws.dk.data(), N, H, D / H, ws.rope, true);
    ops::matmul_dx(ws.dq.data(), N, W.matrix(T.wq, D, D), ws.dh.data(), false);
    ops::matmul_dx(ws.dk.data(), N, W.matrix(T.wk, D, D), ws.dh.data(), true);
    ops::matmul_dx(ws.dv.data(), N, W.matrix(T.wv, D, D), ws.dh.data(), true);
    ops::matmul_dw(ws.dq.data(), A.h.data(), N, D, D, cd, GT.wq, false);
    ops::matmul_dw(ws.dk.data(), A.h.data(), N, D, D, cd, GT.wk, false);
    ops::matmul_dw(ws.dv.data(), A.h.data(), N, D, D, cd, GT.wv, false);
    rmsnorm_backward(A.x.data(), T.attn_norm, A.rstd1.data(), ws.dh.data(), N, D, ws.dx1.data(), GT.attn_norm);
    std::swap(ws.dx, ws.dx1);
  }
  embedding_backward(ws.dx.data(), batch.input.data(), N, D, G.embed);
  return result;
}

}  // namespace unmask::train
