// In-memory random models (see random_model.h).
#include "models/random_model.h"

#include <cmath>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/splitmix64.h"
#include "unmask/error.h"
#include "unmask/quant.h"

namespace unmask {

namespace {

// Values from splitmix64_at keyed by (tensor, element): element i of tensor t gets the same
// value whichever thread fills it.
class Builder {
 public:
  Builder(Model& m, DType dtype, uint64_t seed) : model_(m), dtype_(dtype), seed_(seed) {}

  // A tensor of `shape` with values center + U(-half_width, half_width).
  TensorView tensor(std::initializer_list<int64_t> shape, float center, float half_width) {
    TensorView v;
    v.dtype = float_dtype();
    v.ndim = int(shape.size());
    int i = 0;
    for (int64_t d : shape) v.shape[size_t(i++)] = d;
    const int64_t count = v.numel();
    std::vector<uint8_t>& buf = model_.owned.emplace_back(size_t(count) * dtype_size(v.dtype));
    const uint64_t key = splitmix64_at(seed_ ^ splitmix64_at(++tensors_));
    const bool bf16 = v.dtype == DType::BF16;
    uint8_t* dst = buf.data();
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < count; ++j) {
      // Top 24 bits -> uniform in [-1, 1).
      const float u = float(splitmix64_at(key + uint64_t(j)) >> 40) * 0x1p-23f - 1.0f;
      const float value = center + half_width * u;
      if (bf16) {
        const uint16_t h = f32_to_bf16(value);
        std::memcpy(dst + size_t(j) * 2, &h, 2);
      } else {
        std::memcpy(dst + size_t(j) * 4, &value, 4);
      }
    }
    v.data = buf.data();
    return v;
  }

  // [out, in] matmul weight: U(-a, a) has variance a^2 / 3 = 1 / fan_in.
  // GGUF weight types (F16, block types): drawn in f32, then converted row by row.
  TensorView matrix(int64_t out, int64_t in) {
    const TensorView f = tensor({out, in}, 0.0f, std::sqrt(3.0f / float(in)));
    if (f.dtype == dtype_) return f;
    uint8_t* dst = model_.owned.emplace_back(dtype_row_bytes(dtype_, out * in)).data();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < out; ++r)
      quant::quantize_row(dtype_, f.f32() + r * in, dst + size_t(r) * dtype_row_bytes(dtype_, in), in);
    // Drop the f32 source; moving the later buffers keeps their heap blocks (and views) in place.
    model_.owned.erase(model_.owned.end() - 2);
    TensorView q = f;
    q.dtype = dtype_;
    q.data = dst;
    return q;
  }
  TensorView norm(int64_t d) { return tensor({d}, 1.0f, 0.1f); }
  TensorView bias(int64_t d) { return tensor({d}, 0.0f, 0.02f); }

 private:
  // Norms, biases and the f32 source of GGUF-typed matrices.
  DType float_dtype() const { return dtype_ == DType::BF16 ? DType::BF16 : DType::F32; }
  Model& model_;
  DType dtype_;
  uint64_t seed_;
  uint64_t tensors_ = 0;
};

int parse_int(const std::string& key, const std::string& value) {
  size_t used = 0;
  long v = 0;
  try {
    v = std::stol(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || v <= 0 || v > (1L << 30))
    throw Error("random model spec: key '" + key + "' needs a positive integer, got '" + value + "'");
  return int(v);
}

}  // namespace

RandomModelSpec parse_random_model_spec(const std::string& spec) {
  RandomModelSpec s;
  const size_t colon = spec.find(':');
  s.family = spec.substr(0, colon);
  if (s.family != "llada" && s.family != "dream" && s.family != "sdar" && s.family != "fast_dllm_v2" &&
      s.family != "lladamoe" && s.family != "llada2")
    throw Error("random model spec '" + spec + "': unknown family '" + s.family +
                "' (known: llada, dream, sdar, fast_dllm_v2, lladamoe, llada2)");
  if (colon == std::string::npos) return s;
  std::string_view rest(spec);
  rest.remove_prefix(colon + 1);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string item(rest.substr(0, comma));
    rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string::npos) throw Error("random model spec: '" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "hidden") s.hidden = parse_int(key, value);
    else if (key == "layers") s.layers = parse_int(key, value);
    else if (key == "heads") s.heads = parse_int(key, value);
    else if (key == "kv_heads") s.kv_heads = parse_int(key, value);
    else if (key == "head_dim") s.head_dim = parse_int(key, value);
    else if (key == "ffn") s.ffn = parse_int(key, value);
    else if (key == "vocab") s.vocab = parse_int(key, value);
    else if (key == "seed") s.seed = uint64_t(parse_int(key, value));
    else if (key == "experts") s.experts = parse_int(key, value);
    else if (key == "top_k") s.top_k = parse_int(key, value);
    else if (key == "expert_ffn") s.expert_ffn = parse_int(key, value);
    else if (key == "block") s.block = parse_int(key, value);
    else if (key == "dtype") {
      if (value == "f32") s.dtype = DType::F32;
      else if (value == "bf16") s.dtype = DType::BF16;
      else throw Error("random model spec: key 'dtype' must be f32 or bf16, got '" + value + "'");
    } else {
      throw Error("random model spec: unknown key '" + key +
                  "' (known: hidden, layers, heads, kv_heads, head_dim, ffn, vocab, dtype, seed, experts, top_k, "
                  "expert_ffn, block)");
    }
  }
  return s;
}

std::unique_ptr<Model> make_random_model(const RandomModelSpec& spec) {
  const int kv = spec.kv_heads > 0 ? spec.kv_heads : spec.heads;
  check(spec.heads > 0 && spec.hidden > 0 && spec.layers > 0 && spec.ffn > 0 && spec.vocab > 0,
        "random model: hidden, layers, heads, ffn and vocab must be positive");
  check(spec.head_dim > 0 || spec.hidden % spec.heads == 0,
        "random model: hidden " + std::to_string(spec.hidden) + " is not divisible by heads " +
            std::to_string(spec.heads) + " (give head_dim)");
  check(spec.heads % kv == 0, "random model: heads " + std::to_string(spec.heads) + " is not a multiple of kv_heads " +
                                  std::to_string(kv));
  check(spec.dtype == DType::F32 || spec.dtype == DType::BF16, "random model: dtype must be F32 or BF16");
  const int hd = spec.head_dim > 0 ? spec.head_dim : spec.hidden / spec.heads;
  check(hd % 2 == 0, "random model: head_dim " + std::to_string(hd) + " must be even (RoPE rotates pairs)");

  const bool moe = spec.family == "lladamoe" || spec.family == "llada2";
  check(!moe || (spec.top_k <= spec.experts), "random model: top_k " + std::to_string(spec.top_k) + " > experts " +
                                                 std::to_string(spec.experts));
  auto m = std::make_unique<Model>();
  ModelConfig& c = m->config;
  // Shifted logits + HF rounding: Dream and Fast-dLLM v2 (Qwen2 with q/k/v bias).
  const bool dream = spec.family == "dream" || spec.family == "fast_dllm_v2";
  const bool hf_rope = dream || spec.family == "sdar" || moe;
  c.family = spec.family;
  c.architecture = "random";
  c.hidden = spec.hidden;
  c.n_layers = spec.layers;
  c.n_heads = spec.heads;
  c.n_kv_heads = kv;
  c.head_dim = hd;
  c.ffn = spec.ffn;
  c.vocab = spec.vocab;
  // Family flags as the real loaders set them (models/llada.cpp, models/dream.cpp).
  c.rms_eps = dream ? 1e-6f : 1e-5f;
  c.rope_theta = dream ? 1e6 : 5e5;
  c.rope_precision = hf_rope ? RopePrecision::kCastCosSin : RopePrecision::kF32;
  c.qkv_bias = dream;
  c.logit_shift = dream ? 1 : 0;
  c.qk_norm = spec.family == "sdar" || moe;
  c.rotary_dim = spec.family == "llada2" ? hd / 2 : 0;
  if (spec.family == "sdar" || spec.family == "fast_dllm_v2" || spec.family == "llada2") c.attention_block = spec.block;
  if (moe) {
    MoeConfig& e = c.moe;
    e.n_experts = spec.experts;
    e.top_k = spec.top_k;
    e.expert_ffn = spec.expert_ffn;
    if (spec.family == "llada2") {
      e.first_dense_layers = 1;
      e.shared_ffn = spec.expert_ffn;
      e.score = RouterScore::kSigmoid;
      e.expert_bias = true;
      e.n_group = spec.experts % 8 == 0 ? 8 : 1;
      e.topk_group = spec.experts % 8 == 0 ? 4 : 1;
      e.renormalize = true;
      e.scaling = 2.5;
      check(e.top_k <= e.topk_group * (e.n_experts / e.n_group), "random model: top_k exceeds the kept groups' experts");
    }
  }
  c.max_context = 1 << 20;  // no trained context: positions are only RoPE angles here
  c.special.mask = spec.vocab - 1;
  m->weight_dtype = spec.dtype;
  m->dir = "<random " + spec.family + ">";

  // Tensors are created in a fixed order, so each gets a fixed index in the seed stream.
  Builder b(*m, spec.dtype, spec.seed);
  const int64_t d = spec.hidden, q_out = int64_t(spec.heads) * hd, kv_out = int64_t(kv) * hd;
  ModelWeights& w = m->weights;
  w.embed = b.tensor({spec.vocab, d}, 0.0f, std::sqrt(3.0f));  // unit variance rows
  w.layers.resize(size_t(spec.layers));
  for (LayerWeights& L : w.layers) {
    L.attn_norm = b.norm(d);
    L.wq = b.matrix(q_out, d);
    L.wk = b.matrix(kv_out, d);
    L.wv = b.matrix(kv_out, d);
    if (c.qkv_bias) {
      L.bq = b.bias(q_out);
      L.bk = b.bias(kv_out);
      L.bv = b.bias(kv_out);
    }
    L.wo = b.matrix(d, q_out);
    L.ffn_norm = b.norm(d);
    if (c.qk_norm) {
      L.q_norm = b.norm(hd);
      L.k_norm = b.norm(hd);
    }
    const int layer = int(&L - w.layers.data());
    if (!c.moe.is_moe_layer(layer)) {
      L.w_gate = b.matrix(spec.ffn, d);
      L.w_up = b.matrix(spec.ffn, d);
      L.w_down = b.matrix(d, spec.ffn);
      continue;
    }
    const auto expert = [&](int width) {
      return LayerWeights::Expert{b.matrix(width, d), b.matrix(width, d), b.matrix(d, width)};
    };
    L.router = b.matrix(c.moe.n_experts, d);
    if (c.moe.expert_bias) L.router_bias = b.bias(c.moe.n_experts);
    for (int e = 0; e < c.moe.n_experts; ++e) L.experts.push_back(expert(c.moe.expert_ffn));
    if (c.moe.shared_ffn > 0) L.shared = expert(c.moe.shared_ffn);
  }
  w.final_norm = b.norm(d);
  w.lm_head = b.matrix(spec.vocab, d);
  return m;
}

}  // namespace unmask
