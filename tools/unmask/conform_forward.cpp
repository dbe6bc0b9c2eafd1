// `unmask conform`: forward cases — logits (f32, bf16), hidden states and, for MoE
// fixtures, the routing, against the reference's arrays.
#include <algorithm>
#include <cmath>

#include "conform_fixture.h"

namespace unmask::cli::conform {

namespace {

// f32 logits: the reference's float64 run differs from its float32 run by <= 9e-6
// (manifest max_abs_diff_f32_vs_f64), so an f32 engine with another summation order
// sits well inside 1e-4, while any real defect moves logits (std ~5) by far more.
constexpr double kLogitTolF32 = 1e-4;
// Hidden states (embeddings, each layer's input, final-norm output; magnitudes of a
// few units, below the logits'): same reasoning and the same 1e-4 bound.
constexpr double kHiddenTolF32 = 1e-4;
// bf16 logits: the reference rounds weights AND every activation to bf16 (8-bit
// mantissa, ~0.4% relative); its f32-vs-bf16 gap is ~0.2 at logit std ~5 (~4% of
// std). An engine with bf16 weights but another rounding path (f32 accumulation, f32
// activations, other kernel order) differs from that reference by at most the same
// order, so we allow 10% of the reference logits' std (~0.5 here, 2x the observed
// gap); a wrong weight, norm or RoPE shifts logits by about one std.
constexpr double kBf16TolOfStd = 0.10;
// Argmax agreement: the reference's bf16 logits are themselves rounded to bf16 (steps
// of 1/16 at |logit| ~ 8..16), so exact top-1 ties are common there and its argmax is
// then decided by tie order. A row agrees when the reference's logit at our argmax is
// within two bf16 steps of its maximum; at least 90% of rows must agree (a row whose
// top-2 gap is below our rounding difference may still flip legitimately).
constexpr double kBf16ArgmaxAgreement = 0.90;
constexpr int kBf16ArgmaxSteps = 2;
// MoE bf16: the fraction of rows that must be compared (see forward_case).
constexpr double kMoeRowsRoutedAsRecorded = 0.5;

ForwardOutput run_forward(const Model& m, const std::vector<int32_t>& ids, bool hidden, int attention_block) {
  ForwardBatch b;
  b.attention_block = attention_block;
  b.tokens = ids;
  for (int32_t i = 0; i < int32_t(ids.size()); ++i) {
    b.positions.push_back(i);
    b.logit_rows.push_back(i);
  }
  b.capture_hidden = hidden;
  ForwardOutput out;
  forward(m, b, &out);
  return out;
}

// The attention the reference ran, from the manifest entry's "attention" text:
// "block-causal ... block 8" / "block_size=32" -> 8 / 32; "bidirectional" or an
// all-ones mask -> 0; absent -> -1 (the model's own pattern).
int case_attention_block(const json& entry) {
  if (!entry.is_object() || !entry.contains("attention") || !entry["attention"].is_string()) return -1;
  const std::string a = entry["attention"];
  if (a.find("block-causal") != std::string::npos) {
    const size_t at = a.find("block", a.find("block-causal") + 12);
    size_t digit = a.find_first_of("0123456789", at == std::string::npos ? 0 : at);
    if (at == std::string::npos || digit == std::string::npos) fail("attention '" + a + "': no block size");
    return std::stoi(a.substr(digit));
  }
  if (a.find("bidirectional") != std::string::npos || a.find("all ones") != std::string::npos) return 0;
  fail("attention '" + a + "': not understood");
}

// MoE fixtures: the reference's chosen experts per MoE layer [n_moe_layers, L, top_k].
// Our f32 routing must choose the same sets; bf16 logits are then compared only on rows
// whose bf16 routing is that same choice (a flipped expert changes a whole row).
struct RecordedRouting {
  bool present = false;
  int64_t layers = 0, rows = 0, k = 0;
  std::vector<int64_t> idx;
  bool same_as(const std::vector<std::vector<int32_t>>& ours, int64_t row) const {
    if (int64_t(ours.size()) != layers) return false;
    for (int64_t l = 0; l < layers; ++l) {
      std::vector<int64_t> a(idx.begin() + (l * rows + row) * k, idx.begin() + (l * rows + row + 1) * k);
      std::vector<int64_t> b(ours[size_t(l)].begin() + row * k, ours[size_t(l)].begin() + (row + 1) * k);
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      if (a != b) return false;
    }
    return true;
  }
};

RecordedRouting recorded_routing(const Fixture& fx, const std::string& base, const Model& m, int64_t L) {
  RecordedRouting r;
  const std::string rel = base + ".router_topk_idx.npy";
  if (!listed_or_present(fx, rel)) return r;
  const NpyArray a = load_fixture_npy(fx, rel);
  if (a.shape.size() != 3 || a.shape[1] != L || a.shape[2] != m.config.moe.top_k)
    fail(rel + ": shape " + a.shape_string() + ", expected [n_moe_layers, L, top_k]");
  r.present = true;
  r.layers = a.shape[0];
  r.rows = L;
  r.k = a.shape[2];
  r.idx = a.to_i64();
  return r;
}

// Rows of the bf16 comparison: all, or (MoE) those routed as recorded by us and by the
// reference's bf16 run. The latter is not recorded; its row is taken as flipped when it
// differs from the reference's f32 row by more than the bf16 tolerance itself: unflipped
// rows differ by about half of it (manifest max_abs_diff_f32_vs_bf16 is 0.22-0.29 on the
// dense fixtures and the dense-attention rows, tolerance ~0.5), flipped ones by 1.4-10.
std::vector<int64_t> bf16_rows(const RecordedRouting& routing, const ForwardOutput& o16, const std::vector<float>& ref16,
                               const std::vector<float>& ref32, int64_t L, int64_t vocab, double tol) {
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < L; ++r) {
    if (routing.present) {
      if (!routing.same_as(o16.router_topk, r)) continue;
      double gap = 0;
      for (int64_t j = 0; j < vocab; ++j)
        gap = std::max(gap, std::fabs(double(ref16[size_t(r * vocab + j)]) - ref32[size_t(r * vocab + j)]));
      if (gap > tol) continue;
    }
    rows.push_back(r);
  }
  return rows;
}

std::vector<float> pick_rows(const std::vector<float>& v, const std::vector<int64_t>& rows, int64_t cols) {
  std::vector<float> out;
  for (int64_t r : rows) out.insert(out.end(), v.begin() + r * cols, v.begin() + (r + 1) * cols);
  return out;
}

}  // namespace

void forward_case(Fixture& fx, const std::string& name, const json& entry) {
  const std::string base = "forward/" + name;
  const int attention_block = case_attention_block(entry);
  const std::vector<int32_t> ids = to_ids(load_fixture_npy(fx, base + ".input_ids.npy").to_i64(), base + ".input_ids.npy");
  const int64_t L = int64_t(ids.size());
  const NpyArray want32 = load_fixture_npy(fx, base + ".logits.f32.npy");
  const std::string hidden_rel = base + ".hidden.f32.npy", bf16_rel = base + ".logits.bf16.npy";
  const bool check_hidden = listed_or_present(fx, hidden_rel), check_bf16 = listed_or_present(fx, bf16_rel);
  const std::vector<float> ref32 = want32.to_f32();

  const Model& m32 = fixture_model(fx, weights_file(fx, false));
  const ModelConfig& c = m32.config;
  if (want32.shape != std::vector<int64_t>{L, c.vocab})
    fail(base + ".logits.f32.npy: shape " + want32.shape_string() + ", expected [" + std::to_string(L) + ", " +
         std::to_string(c.vocab) + "]");
  ForwardOutput out = run_forward(m32, ids, check_hidden, attention_block);
  compare_close(out.logits, ref32, c.vocab, kLogitTolF32, "logits.f32");
  RecordedRouting routing = recorded_routing(fx, base, m32, L);
  for (int64_t r = 0; routing.present && r < L; ++r)
    if (!routing.same_as(out.router_topk, r)) fail("router_topk_idx: f32 routing of row " + std::to_string(r) + " differs");
  if (!routing.present && c.moe.n_experts > 0) {
    // No routing recorded: our f32 routing stands in for the reference's, which it must
    // be — the f32 logits just matched to 1e-4, and one flipped expert moves a row by ~1.
    routing.present = true;
    routing.layers = int64_t(out.router_topk.size());
    routing.rows = L;
    routing.k = c.moe.top_k;
    for (const auto& layer : out.router_topk) routing.idx.insert(routing.idx.end(), layer.begin(), layer.end());
  }
  if (check_hidden) {
    const NpyArray h = load_fixture_npy(fx, hidden_rel);
    if (h.shape != std::vector<int64_t>{c.n_layers + 1, L, c.hidden})
      fail(hidden_rel + ": shape " + h.shape_string() + ", expected [n_layers+1, L, hidden]");
    // Row index r of the flat [(n_layers+1)*L, hidden] view: entry r / L, position r % L.
    compare_close(out.hidden, h.to_f32(), c.hidden, kHiddenTolF32, "hidden.f32 (entry*L+pos)");
  }
  if (check_bf16) {
    const std::vector<float> ref16 = load_fixture_npy(fx, bf16_rel).to_f32();
    const Model& m16 = fixture_model(fx, weights_file(fx, true));
    if (m16.weight_dtype != DType::BF16) fail(weights_file(fx, true) + ": weights are not bf16");
    ForwardOutput o16 = run_forward(m16, ids, false, attention_block);
    const double tol = kBf16TolOfStd * stddev(ref32);
    const std::vector<int64_t> rows = bf16_rows(routing, o16, ref16, ref32, L, c.vocab, tol);
    // MoE: tiny random routers flip often in bf16 (near-equal gate logits); at least half
    // the rows must keep the recorded routing, or the comparison says little. Dense: all.
    if (double(rows.size()) < (routing.present ? kMoeRowsRoutedAsRecorded : 1.0) * double(L))
      fail("logits.bf16: only " + std::to_string(rows.size()) + " of " + std::to_string(L) + " rows routed as recorded");
    const std::vector<float> got16 = pick_rows(o16.logits, rows, c.vocab), want16 = pick_rows(ref16, rows, c.vocab);
    compare_close(got16, want16, c.vocab, tol, "logits.bf16 (compared rows)");
    int64_t agree = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      const float* g = got16.data() + int64_t(i) * c.vocab;
      const float* w = want16.data() + int64_t(i) * c.vocab;
      const float top = *std::max_element(w, w + c.vocab);
      const double bf16_step = std::ldexp(1.0, std::ilogb(top) - 7);  // one unit in bf16's last place
      agree += w[std::max_element(g, g + c.vocab) - g] >= top - kBf16ArgmaxSteps * bf16_step;
    }
    if (double(agree) < kBf16ArgmaxAgreement * double(rows.size()))
      fail("logits.bf16: argmax agrees on " + std::to_string(agree) + " of " + std::to_string(rows.size()) + " rows (need " +
           fmt(kBf16ArgmaxAgreement * 100) + "%)");
  }
}

}  // namespace unmask::cli::conform
