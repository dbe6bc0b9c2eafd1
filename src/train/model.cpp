// train/model.cpp — parameter layout, presets, initialisation and the inference view.
#include "train/model.h"

#include <cmath>

#include "train/rng.h"
#include "unmask/error.h"

namespace unmask {

ModelShape preset_shape(const std::string& name) {
  ModelShape s;
  if (name == "tiny") {  // a few seconds for 50 steps: tests and smoke runs
    s.hidden = 128, s.layers = 2, s.heads = 2, s.ffn = 384;
  } else if (name == "small") {  // ~3.4M non-embedding parameters; sizes multiples of 256
    s.hidden = 256, s.layers = 4, s.heads = 4, s.ffn = 768;
  } else if (name == "medium") {  // ~27M non-embedding parameters
    s.hidden = 512, s.layers = 8, s.heads = 8, s.ffn = 1536;
  } else {
    throw Error("unknown preset '" + name + "' (known: tiny, small, medium)");
  }
  return s;
}

void validate_shape(const ModelShape& s) {
  auto positive = [](int v, const char* field) {
    check(v > 0, std::string("model shape: ") + field + " must be positive, got " + std::to_string(v));
  };
  positive(s.hidden, "hidden");
  positive(s.layers, "layers");
  positive(s.heads, "heads");
  positive(s.ffn, "ffn");
  positive(s.vocab, "vocab");
  check(s.hidden % s.heads == 0 && (s.hidden / s.heads) % 2 == 0,
        "model shape: hidden " + std::to_string(s.hidden) + " must split into " + std::to_string(s.heads) +
            " heads of even size (RoPE rotates pairs)");
}

}  // namespace unmask

namespace unmask::train {

ParamLayout make_param_layout(const ModelShape& shape) {
  validate_shape(shape);
  ParamLayout l;
  l.shape = shape;
  auto add = [&](const std::string& name, std::vector<int64_t> dims) {
    TensorSlot s;
    s.name = name;
    s.numel = 1;
    for (int64_t d : dims) s.numel *= size_t(d);
    s.shape = std::move(dims);
    s.offset = l.total;
    s.decay = s.shape.size() == 2;
    l.total += s.numel;
    l.slots.push_back(std::move(s));
  };
  const int64_t d = shape.hidden, f = shape.ffn, v = shape.vocab;
  const std::string p = "model.transformer.";
  add(p + "wte.weight", {v, d});
  for (int i = 0; i < shape.layers; ++i) {
    const std::string b = p + "blocks." + std::to_string(i) + ".";
    add(b + "attn_norm.weight", {d});
    add(b + "q_proj.weight", {d, d});
    add(b + "k_proj.weight", {d, d});
    add(b + "v_proj.weight", {d, d});
    add(b + "attn_out.weight", {d, d});
    add(b + "ff_norm.weight", {d});
    add(b + "ff_proj.weight", {f, d});
    add(b + "up_proj.weight", {f, d});
    add(b + "ff_out.weight", {d, f});
  }
  add(p + "ln_f.weight", {d});
  add(p + "ff_out.weight", {v, d});
  return l;
}

namespace {
constexpr int kSlotsPerLayer = 9;

template <class T>
ModelTensors<T> bind(const ParamLayout& l, T* base) {
  ModelTensors<T> m;
  auto at = [&](size_t i) { return base + l.slots[i].offset; };
  m.embed = at(0);
  for (int i = 0; i < l.shape.layers; ++i) {
    const size_t s = 1 + size_t(i) * kSlotsPerLayer;
    m.layers.push_back({at(s), at(s + 1), at(s + 2), at(s + 3), at(s + 4), at(s + 5), at(s + 6), at(s + 7), at(s + 8)});
  }
  m.final_norm = at(l.slots.size() - 2);
  m.lm_head = at(l.slots.size() - 1);
  return m;
}

TensorView f32_view(const float* data, const std::vector<int64_t>& shape) {
  TensorView v;
  v.data = data;
  v.dtype = DType::F32;
  v.ndim = int(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) v.shape[i] = shape[i];
  return v;
}
}  // namespace

ModelTensors<float> bind_tensors(const ParamLayout& layout, float* base) { return bind(layout, base); }
ModelTensors<const float> bind_tensors(const ParamLayout& layout, const float* base) { return bind(layout, base); }

void init_params(const ParamLayout& layout, uint64_t seed, float* params) {
  constexpr double kStd = 0.02;
  const double out_scale = 1.0 / std::sqrt(2.0 * layout.shape.layers);
  for (size_t t = 0; t < layout.slots.size(); ++t) {
    const TensorSlot& s = layout.slots[t];
    float* dst = params + s.offset;
    if (!s.decay) {  // norm weights
      for (size_t i = 0; i < s.numel; ++i) dst[i] = 1.0f;
      continue;
    }
    const bool output_proj = s.name.find("attn_out") != std::string::npos ||
                             (s.name.find("blocks.") != std::string::npos && s.name.find("ff_out") != std::string::npos);
    const double std = kStd * (output_proj ? out_scale : 1.0);
    Rng rng(seed, Stream::kInit, t);
    for (size_t i = 0; i < s.numel; ++i) dst[i] = float(std * rng.normal());
  }
}

std::unique_ptr<Model> model_view(const ParamLayout& layout, const float* params, const SpecialTokens& special) {
  const ModelShape& s = layout.shape;
  auto m = std::make_unique<Model>();
  ModelConfig& c = m->config;
  c.family = "llada";
  c.architecture = "LLaDAModelLM";
  c.hidden = s.hidden;
  c.n_layers = s.layers;
  c.n_heads = c.n_kv_heads = s.heads;
  c.head_dim = s.hidden / s.heads;
  c.ffn = s.ffn;
  c.vocab = s.vocab;
  c.rms_eps = float(s.rms_eps);
  c.rope_theta = s.rope_theta;
  c.rope_precision = RopePrecision::kF32;
  c.max_context = s.max_context;
  c.special = special;
  m->weight_dtype = DType::F32;
  m->dir = "<training parameters>";
  auto view = [&](size_t i) { return f32_view(params + layout.slots[i].offset, layout.slots[i].shape); };
  ModelWeights& w = m->weights;
  w.embed = view(0);
  for (int i = 0; i < s.layers; ++i) {
    const size_t b = 1 + size_t(i) * kSlotsPerLayer;
    LayerWeights L;
    L.attn_norm = view(b);
    L.wq = view(b + 1);
    L.wk = view(b + 2);
    L.wv = view(b + 3);
    L.wo = view(b + 4);
    L.ffn_norm = view(b + 5);
    L.w_gate = view(b + 6);
    L.w_up = view(b + 7);
    L.w_down = view(b + 8);
    w.layers.push_back(L);
  }
  w.final_norm = view(layout.slots.size() - 2);
  w.lm_head = view(layout.slots.size() - 1);
  return m;
}

}  // namespace unmask::train
