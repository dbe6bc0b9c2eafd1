// Mixture-of-experts block (see moe.h).
//
//   logits[n, E] = h · router^T (f32)
//   softmax router:  p = softmax(logits); chosen = top_k of p; w = p[chosen]
//   sigmoid router:  s = sigmoid(logits); b = s + expert_bias; group score = sum of the top-2
//                    b of each of n_group groups; experts outside the topk_group best groups
//                    are excluded; chosen = top_k of b; w = s[chosen]
//   w /= sum(w) + 1e-20 when renormalize (and top_k > 1); w *= scaling
//   y = Σ_k w_k · down_k(silu(gate_k h) * up_k h)  (+ shared expert)
#include "models/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ops/cpu/matmul.h"
#include "ops/ops.h"

namespace unmask {

namespace {

// Indices of the k largest of v[0..n), best first; ties keep the lower index first.
std::vector<int32_t> top_indices(const float* v, int n, int k) {
  std::vector<int32_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return v[a] > v[b]; });
  order.resize(size_t(std::min(k, n)));
  return order;
}

// out [n, hidden] = down(silu(gate x) * up x) for one SwiGLU expert.
void swiglu(const float* x, int64_t n, const LayerWeights::Expert& e, const LinearCall& call, float* out,
            ForwardOutput* stats) {
  const int64_t f = e.w_gate.dim(0);
  std::vector<float> gate(size_t(n * f)), up(size_t(n * f));
  linear(x, n, {{e.w_gate, nullptr, gate.data()}, {e.w_up, nullptr, up.data()}}, call, stats);
  ops::silu_mul(gate.data(), up.data(), n * f, call.bf16);
  linear(gate.data(), n, {{e.w_down, nullptr, out}}, call, stats);
}

double expert_bytes(const LayerWeights::Expert& e) {
  return double(e.w_gate.nbytes() + e.w_up.nbytes() + e.w_down.nbytes());
}

}  // namespace

MoeRouting moe_route(const MoeConfig& moe, const float* router_logits, const std::vector<float>& expert_bias,
                     int64_t n) {
  const int E = moe.n_experts, k = moe.top_k;
  MoeRouting r;
  r.idx.resize(size_t(n * k));
  r.weight.resize(size_t(n * k));
  std::vector<float> score(static_cast<size_t>(E)), select(static_cast<size_t>(E));
  for (int64_t t = 0; t < n; ++t) {
    const float* logits = router_logits + t * E;
    if (moe.score == RouterScore::kSoftmax) {
      const float mx = *std::max_element(logits, logits + E);
      float sum = 0;
      for (int e = 0; e < E; ++e) sum += (score[size_t(e)] = std::exp(logits[e] - mx));
      for (int e = 0; e < E; ++e) score[size_t(e)] /= sum;
    } else {
      for (int e = 0; e < E; ++e) score[size_t(e)] = 1.0f / (1.0f + std::exp(-logits[e]));
    }
    select = score;
    if (!expert_bias.empty())
      for (int e = 0; e < E; ++e) select[size_t(e)] += expert_bias[size_t(e)];
    if (moe.n_group > 1) {
      const int per_group = E / moe.n_group;
      std::vector<float> group_score(size_t(moe.n_group));
      for (int g = 0; g < moe.n_group; ++g) {
        const std::vector<int32_t> top2 = top_indices(select.data() + g * per_group, per_group, 2);
        float s = 0;
        for (int32_t i : top2) s += select[size_t(g * per_group + i)];
        group_score[size_t(g)] = s;
      }
      const std::vector<int32_t> kept = top_indices(group_score.data(), moe.n_group, moe.topk_group);
      for (int g = 0; g < moe.n_group; ++g)
        if (std::find(kept.begin(), kept.end(), g) == kept.end())
          for (int e = g * per_group; e < (g + 1) * per_group; ++e) select[size_t(e)] = -INFINITY;
    }
    const std::vector<int32_t> chosen = top_indices(select.data(), E, k);
    float total = 0;
    for (int j = 0; j < k; ++j) total += score[size_t(chosen[size_t(j)])];
    for (int j = 0; j < k; ++j) {
      float w = score[size_t(chosen[size_t(j)])];
      if (moe.renormalize && k > 1) w /= total + 1e-20f;
      r.idx[size_t(t * k + j)] = chosen[size_t(j)];
      r.weight[size_t(t * k + j)] = float(double(w) * moe.scaling);
    }
  }
  return r;
}

void moe_ffn(const ModelConfig& c, const LayerWeights& L, const float* h, int64_t n, const LinearCall& call, float* y,
             ForwardOutput* stats) {
  const MoeConfig& moe = c.moe;
  const int64_t d = c.hidden;
  const int E = moe.n_experts, k = moe.top_k;
  std::vector<float> logits(size_t(n * E));
  {
    // Router in f32 whatever the activations (router_dtype fp32): no bf16 rounding.
    LinearCall f32_call = call;
    f32_call.bf16 = false;
    linear(h, n, {{L.router, nullptr, logits.data()}}, f32_call, stats);
  }
  std::vector<float> bias;
  for (int64_t e = 0; e < L.router_bias.numel() && L.router_bias.data; ++e) bias.push_back(load_as_f32(L.router_bias, e));
  MoeRouting route = moe_route(moe, logits.data(), bias, n);
  if (call.bf16)  // torch casts the routing weights to the activation dtype
    ops::round_to_bf16(route.weight.data(), int64_t(route.weight.size()));

  // Group tokens by expert: (token, slot k) pairs, expert by expert in ascending order.
  std::vector<std::vector<int32_t>> tokens_of(static_cast<size_t>(E));
  for (int64_t t = 0; t < n; ++t)
    for (int j = 0; j < k; ++j) tokens_of[size_t(route.idx[size_t(t * k + j)])].push_back(int32_t(t * k + j));

  std::fill(y, y + n * d, 0.0f);
  std::vector<float> rows, out;
  for (int e = 0; e < E; ++e) {
    const std::vector<int32_t>& pairs = tokens_of[size_t(e)];
    if (pairs.empty()) continue;
    const int64_t m = int64_t(pairs.size());
    rows.resize(size_t(m * d));
    out.resize(size_t(m * d));
    for (int64_t i = 0; i < m; ++i) std::copy_n(h + (pairs[size_t(i)] / k) * d, d, rows.data() + i * d);
    swiglu(rows.data(), m, L.experts[size_t(e)], call, out.data(), stats);
    stats->expert_bytes += expert_bytes(L.experts[size_t(e)]);
    for (int64_t i = 0; i < m; ++i) {
      const float w = route.weight[size_t(pairs[size_t(i)])];
      float* yr = y + (pairs[size_t(i)] / k) * d;
      const float* o = out.data() + i * d;
      for (int64_t j = 0; j < d; ++j) {
        const float term = call.bf16 ? round_to_bf16(o[j] * w) : o[j] * w;
        yr[j] = call.bf16 ? round_to_bf16(yr[j] + term) : yr[j] + term;
      }
    }
  }
  stats->expert_bytes_token_loop += double(n) * double(k) * expert_bytes(L.experts[0]);
  if (moe.shared_ffn > 0) {
    out.resize(size_t(n * d));
    swiglu(h, n, L.shared, call, out.data(), stats);
    ops::add_inplace(y, out.data(), n * d, call.bf16);
  }
  stats->router_topk.push_back(std::move(route.idx));
}

}  // namespace unmask
