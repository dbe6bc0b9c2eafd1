// load_model: config.json -> family -> ModelConfig; weights bound from the
// folder's safetensors; generation_config.json and the tokenizer files fill in
// generation defaults and special-token roles the config does not carry.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "io/json_file.h"
#include "models/gguf_model.h"
#include "models/registry.h"
#include "unmask/gguf.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask {

namespace fs = std::filesystem;

namespace {

void validate_config(const ModelConfig& c, const std::string& file) {
  auto positive = [&](int v, const char* what) {
    if (v <= 0) throw Error(file + ": " + what + " must be positive, got " + std::to_string(v));
  };
  positive(c.hidden, "hidden size");
  positive(c.n_layers, "layer count");
  positive(c.n_heads, "head count");
  positive(c.n_kv_heads, "kv head count");
  positive(c.ffn, "MLP size");
  positive(c.vocab, "vocabulary size");
  positive(c.head_dim, "head dim");
  if (c.n_heads % c.n_kv_heads != 0)
    throw Error(file + ": " + std::to_string(c.n_heads) + " heads not divisible by " + std::to_string(c.n_kv_heads) +
                " kv heads");
  if (c.head_dim % 2 != 0) throw Error(file + ": head dim " + std::to_string(c.head_dim) + " must be even for RoPE");
  // Nonsense values here would not fail later, they would give NaN or unbounded runs.
  if (c.max_context <= 0)
    throw Error(file + ": context length must be positive, got " + std::to_string(c.max_context));
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta))
    throw Error(file + ": rope_theta must be a positive number, got " + std::to_string(c.rope_theta));
  if (!(c.rms_eps >= 0) || !std::isfinite(c.rms_eps))
    throw Error(file + ": rms_norm_eps must be a non-negative number, got " + std::to_string(c.rms_eps));
  if (c.rotary_dim < 0 || c.rotary_dim > c.head_dim || c.rotary_dim % 2 != 0)
    throw Error(file + ": rotary dims " + std::to_string(c.rotary_dim) + " must be even and at most head dim " +
                std::to_string(c.head_dim));
  if (c.attention_block < 0) throw Error(file + ": attention block size must not be negative");
  const MoeConfig& moe = c.moe;
  if (moe.n_experts > 0) {
    positive(moe.top_k, "num_experts_per_tok");
    positive(moe.expert_ffn, "expert MLP size");
    positive(moe.n_group, "n_group");
    positive(moe.topk_group, "topk_group");
    if (moe.top_k > moe.n_experts || moe.n_experts % moe.n_group != 0 || moe.topk_group > moe.n_group ||
        moe.top_k > moe.topk_group * (moe.n_experts / moe.n_group))
      throw Error(file + ": MoE routing of top " + std::to_string(moe.top_k) + " of " + std::to_string(moe.n_experts) +
                  " experts in " + std::to_string(moe.topk_group) + " of " + std::to_string(moe.n_group) +
                  " groups is inconsistent");
    if (moe.first_dense_layers < 0 || moe.first_dense_layers > c.n_layers)
      throw Error(file + ": first_k_dense_replace " + std::to_string(moe.first_dense_layers) + " outside [0, layers]");
  }
  const auto in_vocab = [&](int32_t id, const char* role) {
    if (id >= c.vocab) throw Error(file + ": " + role + " token id " + std::to_string(id) + " >= vocab " + std::to_string(c.vocab));
  };
  in_vocab(c.special.mask, "mask");
  in_vocab(c.special.eos, "eos");
  in_vocab(c.special.bos, "bos");
  in_vocab(c.special.pad, "pad");
}

void read_generation_config(const std::string& path, GenerationDefaults& g) {
  if (!fs::exists(path)) return;
  const nlohmann::json j = read_json_file(path);
  JsonFields f(j, path);
  if ((g.has_temperature = f.has("temperature"))) g.temperature = f.number("temperature");
  if ((g.has_top_p = f.has("top_p"))) g.top_p = f.number("top_p");
  if ((g.has_top_k = f.has("top_k"))) g.top_k = f.int32("top_k");
  if ((g.has_steps = f.has("steps"))) g.steps = f.int32("steps");
  if ((g.has_alg = f.has("alg"))) g.alg = f.string_or("alg", "");
  if (f.has("eos_token_id")) {
    const auto& e = j.at("eos_token_id");
    if (e.is_number_integer()) g.eos_ids.push_back(e.get<int32_t>());
    if (e.is_array())
      for (const auto& v : e)
        if (v.is_number_integer()) g.eos_ids.push_back(v.get<int32_t>());
  }
}

// Special-token roles the config lacks, from tokenizer.json's added tokens and
// tokenizer_config.json's role strings (bos_token, mask_token, ...).
void fill_special_tokens_from_tokenizer(const std::string& dir, SpecialTokens& s) {
  const std::string tok_path = dir + "/tokenizer.json", cfg_path = dir + "/tokenizer_config.json";
  if (!fs::exists(tok_path)) return;
  const nlohmann::json tok = read_json_file(tok_path);
  auto id_of = [&](const std::string& content) -> int32_t {
    auto it = tok.find("added_tokens");
    if (it == tok.end() || !it->is_array()) return -1;
    for (const auto& t : *it)
      // Type-checked first: json::value() throws a non-unmask type_error on a non-string.
      if (t.is_object() && t.contains("content") && t["content"].is_string() && t["content"] == content &&
          t.contains("id") && t["id"].is_number_integer())
        return t["id"].get<int32_t>();
    return -1;
  };
  auto role_string = [](const nlohmann::json& v) -> std::string {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return {};
  };
  if (fs::exists(cfg_path)) {
    const nlohmann::json cfg = read_json_file(cfg_path);
    auto fill = [&](int32_t& slot, const char* key) {
      if (slot >= 0 || !cfg.contains(key)) return;
      const std::string str = role_string(cfg[key]);
      if (!str.empty()) slot = id_of(str);
    };
    fill(s.bos, "bos_token");
    fill(s.eos, "eos_token");
    fill(s.pad, "pad_token");
    fill(s.mask, "mask_token");
  }
  // End-of-turn token: the chat formats' turn terminators.
  for (const char* eot : {"<|eot_id|>", "<|im_end|>", "<|role_end|>"})
    if (s.eot < 0) s.eot = id_of(eot);
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& dir, const LoadOptions& options) {
  if (is_gguf_file(dir)) {  // `-m model.gguf`: llama.cpp's layout (models/gguf_load.cpp)
    auto model = load_gguf_model(dir);
    validate_config(model->config, dir);
    return model;
  }
  // `-m DIR --weights model-q8_0.gguf`: a GGUF beside the folder's files is a whole model.
  if (!options.weights_file.empty() && is_gguf_file(dir + "/" + options.weights_file))
    return load_model(dir + "/" + options.weights_file, LoadOptions{});
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir + ": not a model folder");
  auto model = std::make_unique<Model>();
  model->dir = dir;
  const std::string config_path = dir + "/config.json";
  const nlohmann::json config_json = read_json_file(config_path);
  if (!config_json.is_object()) throw Error(config_path + ": expected a JSON object");
  JsonFields config(config_json, config_path);
  const FamilyBinding& family = find_family(config);
  ModelConfig& c = model->config;
  c.family = family.name;
  if (config.has("architectures") && config_json["architectures"].is_array() && !config_json["architectures"].empty())
    c.architecture = config_json["architectures"][0].is_string() ? config_json["architectures"][0].get<std::string>() : "";
  family.read_config(config, c);
  fill_special_tokens_from_tokenizer(dir, c.special);
  validate_config(c, config_path);
  read_generation_config(dir + "/generation_config.json", model->generation);

  model->store = TensorStore::open(options.weights_file.empty() ? dir : dir + "/" + options.weights_file);
  WeightBinder binder(*model->store);
  family.bind_weights(binder, c, model->weights);
  model->weight_dtype = binder.matmul_dtype();
  return model;
}

namespace {

// Calls f(view) for each of a layer's tensors that holds data, with the first `experts`
// routed experts.
template <class F>
void for_each_layer_weight(const LayerWeights& L, int experts, F&& f) {
  for (const TensorView* t : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk, &L.bv, &L.wo, &L.ffn_norm, &L.w_gate,
                              &L.w_up, &L.w_down, &L.q_norm, &L.k_norm, &L.router, &L.router_bias, &L.shared.w_gate,
                              &L.shared.w_up, &L.shared.w_down})
    if (t->data) f(*t);
  for (int e = 0; e < experts && e < int(L.experts.size()); ++e)
    for (const TensorView* t : {&L.experts[size_t(e)].w_gate, &L.experts[size_t(e)].w_up, &L.experts[size_t(e)].w_down})
      if (t->data) f(*t);
}

// Every bound weight's bytes as [begin, end), merged where they overlap or touch (a tied
// LM head is the embedding), in address order.
std::vector<std::pair<uintptr_t, uintptr_t>> weight_ranges(const ModelWeights& w) {
  std::vector<std::pair<uintptr_t, uintptr_t>> r;
  auto add = [&](const TensorView& t) {
    if (t.data) r.emplace_back(uintptr_t(t.data), uintptr_t(t.data) + t.nbytes());
  };
  add(w.embed);
  add(w.final_norm);
  add(w.lm_head);
  for (const LayerWeights& L : w.layers) for_each_layer_weight(L, int(L.experts.size()), add);
  std::sort(r.begin(), r.end());
  std::vector<std::pair<uintptr_t, uintptr_t>> merged;
  for (const auto& [b, e] : r) {
    if (!merged.empty() && b <= merged.back().second) merged.back().second = std::max(merged.back().second, e);
    else merged.emplace_back(b, e);
  }
  return merged;
}

}  // namespace

int64_t layer_parameter_count(const LayerWeights& L, int experts) {
  int64_t n = 0;
  for_each_layer_weight(L, experts, [&](const TensorView& t) { n += t.numel(); });
  return n;
}

void prefetch_weights(const Model& model, const std::function<void(size_t done, size_t total)>& on_progress) {
  const auto ranges = weight_ranges(model.weights);
  size_t total = 0, done = 0;
  for (const auto& [b, e] : ranges) total += e - b;
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  constexpr uintptr_t kPiece = uintptr_t(64) << 20;
  for (const auto& [b, e] : ranges) {
    for (uintptr_t p = b; p < e;) {
      const uintptr_t q = std::min(e, p + kPiece);
      const uintptr_t lo = p / page * page, hi = (q + page - 1) / page * page;
      if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_READ) != 0) {
        // Kernels before 5.14 (EINVAL): fault the pages in by reading one byte of each.
        unsigned char sink = 0;
        for (uintptr_t a = p; a < q; a = (a / page + 1) * page) sink ^= *reinterpret_cast<const volatile unsigned char*>(a);
        (void)sink;
      }
      done += q - p;
      if (on_progress) on_progress(done, total);
      p = q;
    }
  }
}

int64_t active_parameter_count(const Model& model) {
  const ModelWeights& w = model.weights;
  int64_t n = w.embed.numel() + w.final_norm.numel();
  if (w.lm_head.data != w.embed.data) n += w.lm_head.numel();
  for (const auto& L : w.layers) n += layer_parameter_count(L, L.experts.empty() ? 0 : model.config.moe.top_k);
  return n;
}

int64_t parameter_count(const Model& model) {
  const ModelWeights& w = model.weights;
  int64_t n = w.embed.numel() + w.final_norm.numel();
  if (w.lm_head.data != w.embed.data) n += w.lm_head.numel();
  for (const auto& L : w.layers)
    n += layer_parameter_count(L, int(L.experts.size()));
  return n;
}

}  // namespace unmask
