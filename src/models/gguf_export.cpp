// Writing a loaded model as a GGUF in llama.cpp's layout (what its converter plus
// llama-quantize would produce): key-values, tokenizer, tensors converted row by row.
#include <cstring>
#include <vector>
#include <filesystem>

#include "io/json_file.h"
#include "models/gguf_model.h"
#include "unmask/error.h"
#include "unmask/gguf.h"
#include "unmask/quant.h"

namespace unmask {

namespace {

constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;  // GGUF token types

GgufValue strings(const std::vector<std::string>& items) {
  std::vector<GgufValue> v;
  v.reserve(items.size());
  for (const auto& s : items) v.push_back(GgufValue::string(s));
  return GgufValue::array(GgufType::kString, std::move(v));
}

// tokenizer.* key-values from a HF folder's tokenizer.json / tokenizer_config.json.
void tokenizer_from_dir(const std::string& dir, const ModelConfig& c, GgufWriter& w) {
  const std::string tok_path = dir + "/tokenizer.json";
  const nlohmann::json tok = read_json_file(tok_path);
  const auto fail = [&](const std::string& what) { throw Error(tok_path + ": " + what); };
  if (!tok.is_object() || !tok.contains("model") || !tok["model"].is_object() || tok["model"].value("type", "") != "BPE")
    fail("only byte-level BPE tokenizers can be written to GGUF");
  const nlohmann::json& m = tok["model"];
  std::vector<std::string> tokens(size_t(c.vocab));
  std::vector<GgufValue> types(size_t(c.vocab), GgufValue::i32(kUnused));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = "[PAD" + std::to_string(i) + "]";
  const auto place = [&](const nlohmann::json& id, const std::string& text, int32_t type) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= c.vocab)
      fail("token '" + text + "' has an id outside the model's vocabulary of " + std::to_string(c.vocab));
    tokens[id.get<size_t>()] = text;
    types[id.get<size_t>()] = GgufValue::i32(type);
  };
  if (m.contains("vocab") && m["vocab"].is_object())
    for (const auto& [text, id] : m["vocab"].items()) place(id, text, kNormal);
  if (tok.contains("added_tokens") && tok["added_tokens"].is_array())
    for (const auto& a : tok["added_tokens"])
      if (a.is_object() && a.contains("content") && a["content"].is_string() && a.contains("id"))
        place(a["id"], a["content"].get<std::string>(), a.value("special", false) ? kControl : kUserDefined);
  std::vector<std::string> merges;
  if (m.contains("merges") && m["merges"].is_array())
    for (const auto& e : m["merges"]) {
      if (e.is_string()) merges.push_back(e.get<std::string>());
      else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string())
        merges.push_back(e[0].get<std::string>() + " " + e[1].get<std::string>());
      else fail("model.merges entries must be \"a b\" or [\"a\", \"b\"]");
    }
  // The pre-tokenizer: its Split regex names a known llama.cpp pre-tokenizer.
  std::string regex;
  const nlohmann::json& pre = tok.contains("pre_tokenizer") ? tok["pre_tokenizer"] : nlohmann::json();
  const nlohmann::json steps = pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers")
                                   ? pre["pretokenizers"]
                                   : nlohmann::json::array({pre});
  for (const auto& s : steps)
    if (s.is_object() && s.value("type", "") == "Split" && s.contains("pattern") && s["pattern"].is_object() &&
        s["pattern"].contains("Regex") && s["pattern"]["Regex"].is_string())
      regex = s["pattern"]["Regex"].get<std::string>();
  std::string pre_name;
  for (const GgufPreTokenizer& p : gguf_pre_tokenizers())
    if (regex == p.regex) pre_name = p.names.front();
  if (pre_name.empty()) fail("pre-tokenizer regex is not one GGUF names (llama3, qwen2, gpt-2, unmask-code)");

  w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::string(pre_name));
  w.set("tokenizer.ggml.tokens", strings(tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::array(GgufType::kI32, std::move(types)));
  w.set("tokenizer.ggml.merges", strings(merges));
  const auto id = [&](const char* key, int32_t v) {
    if (v >= 0) w.set(std::string("tokenizer.ggml.") + key, GgufValue::u32(uint32_t(v)));
  };
  id("bos_token_id", c.special.bos);
  id("eos_token_id", c.special.eos);
  id("padding_token_id", c.special.pad);
  id("mask_token_id", c.special.mask);
  id("eot_token_id", c.special.eot);
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (std::filesystem::exists(cfg_path)) {
    const nlohmann::json cfg = read_json_file(cfg_path);
    if (cfg.is_object() && cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
      w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(cfg["add_bos_token"].get<bool>()));
    if (cfg.is_object() && cfg.contains("chat_template") && cfg["chat_template"].is_string())
      w.set("tokenizer.chat_template", GgufValue::string(cfg["chat_template"].get<std::string>()));
  }
}

void tokenizer_from_gguf(const std::string& path, GgufWriter& w) {
  const std::shared_ptr<GgufFile> g = GgufFile::open(path);
  for (const auto& [key, value] : g->header().kvs)
    if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
}

// The type a [rows, k] matrix is written in: the requested one when k is whole blocks,
// else the largest block type that fits (as llama-quantize falls back), else F16.
DType type_for_row(DType wanted, int64_t k) {
  if (k % dtype_block_elems(wanted) == 0) return wanted;
  if (dtype_is_quantized(wanted) && k % 32 == 0) return DType::Q8_0;
  return DType::F16;
}

// Source row of GGUF row r under llama.cpp's LLaDA q/k interleave (see gguf_model.h).
int64_t permuted_source_row(int64_t r, int64_t head_dim) {
  const int64_t h = r / head_dim, j = r % head_dim;
  return h * head_dim + (j % 2) * (head_dim / 2) + j / 2;
}

// Rows of t converted to `type`, written consecutively at out; head_dim > 0 applies the
// q/k interleave (row r of the output is source row permuted_source_row(r)).
void quant_rows(const TensorView& t, DType type, uint8_t* out, int64_t head_dim = 0) {
  const int64_t rows = t.dim(0), k = t.dim(1);
  const size_t row_bytes = dtype_row_bytes(type, k);
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t src = head_dim > 0 ? permuted_source_row(r, head_dim) : r;
    quant::dequantize_row(t.dtype, t.row_bytes(src), row.data(), k);
    quant::quantize_row(type, row.data(), out + size_t(r) * row_bytes, k);
  }
}

class TensorAdder {
 public:
  TensorAdder(GgufWriter& w, DType matmul_type) : w_(w), type_(matmul_type) {}
  // A matrix [rows, k] converted row by row; head_dim > 0 applies the q/k interleave.
  void matrix(const std::string& name, const TensorView& t, int64_t head_dim = 0) {
    const DType type = type_for_row(type_, t.dim(1));
    w_.add_tensor(name, type, {t.dim(0), t.dim(1)}, [t, type, head_dim](std::vector<uint8_t>& out) {
      out.resize(size_t(t.dim(0)) * dtype_row_bytes(type, t.dim(1)));
      quant_rows(t, type, out.data(), head_dim);
    });
  }
  // A small matrix kept F32 whatever the type (the MoE router: llama-quantize leaves it).
  void matrix_f32(const std::string& name, const TensorView& t) {
    w_.add_tensor(name, DType::F32, {t.dim(0), t.dim(1)}, [t](std::vector<uint8_t>& out) {
      out.resize(size_t(t.dim(0) * t.dim(1)) * 4);
      quant_rows(t, DType::F32, out.data());
    });
  }
  // Experts' matrices [rows, k] (one per expert) stacked into llama.cpp's 3-D
  // [n_experts, rows, k] tensor.
  void stacked(const std::string& name, const std::vector<TensorView>& per_expert) {
    const TensorView& t0 = per_expert.front();
    const DType type = type_for_row(type_, t0.dim(1));
    w_.add_tensor(name, type, {int64_t(per_expert.size()), t0.dim(0), t0.dim(1)},
                  [per_expert, type](std::vector<uint8_t>& out) {
                    const size_t bytes = size_t(per_expert[0].dim(0)) * dtype_row_bytes(type, per_expert[0].dim(1));
                    out.resize(per_expert.size() * bytes);
                    for (size_t e = 0; e < per_expert.size(); ++e) quant_rows(per_expert[e], type, out.data() + e * bytes);
                  });
  }
  // A vector (norm weight, bias) as F32; head_dim > 0 permutes it like q/k rows.
  void vector(const std::string& name, const TensorView& t, int64_t head_dim = 0) {
    if (t.empty()) return;
    w_.add_tensor(name, DType::F32, {t.dim(0)}, [t, head_dim](std::vector<uint8_t>& out) {
      std::vector<float> v(static_cast<size_t>(t.dim(0)));
      for (int64_t i = 0; i < t.dim(0); ++i)
        v[size_t(i)] = load_as_f32(t, head_dim > 0 ? permuted_source_row(i, head_dim) : i);
      out.resize(v.size() * 4);
      std::memcpy(out.data(), v.data(), out.size());
    });
  }

 private:
  GgufWriter& w_;
  DType type_;
};

}  // namespace

void write_gguf_model(const Model& model, const std::string& out_path, const GgufExportOptions& options) {
  const ModelConfig& c = model.config;
  const bool moe = c.family == "lladamoe";
  const std::string arch = moe ? "llada-moe" : c.family;  // llama.cpp's architecture names
  if (arch != "llada" && arch != "dream" && !moe)
    throw Error(out_path + ": family '" + c.family + "' has no GGUF layout here (llada, dream, lladamoe)");
  if ((c.moe.n_experts > 0) != moe || (c.qk_norm && !moe) || (c.rotary_dim != 0 && c.rotary_dim != c.head_dim) ||
      c.attention_block != 0)
    throw Error(out_path + ": the model uses features (MoE, qk-norm, partial RoPE, block attention) the " + arch +
                " GGUF layout cannot carry");
  // llama.cpp's llada-moe: every layer MoE, softmax router, top-k weights not renormalised,
  // no shared expert, QK-norm.
  if (moe && (c.moe.first_dense_layers != 0 || c.moe.shared_ffn != 0 || c.moe.renormalize ||
              c.moe.score != RouterScore::kSoftmax || !c.qk_norm))
    throw Error(out_path + ": this LLaDA-MoE variant (dense first layers, shared expert, renormalised or sigmoid "
                "routing, or no QK-norm) has no llama.cpp llada-moe layout");
  if (!dtype_is_quantized(options.matmul_type) && options.matmul_type != DType::F16 &&
      options.matmul_type != DType::BF16 && options.matmul_type != DType::F32)
    throw Error(out_path + ": cannot write matmul weights as " + std::string(dtype_name(options.matmul_type)));
  GgufWriter w;
  const std::string p = arch + ".";
  w.set("general.architecture", GgufValue::string(arch));
  w.set("general.name", GgufValue::string(std::filesystem::path(model.dir).filename().string()));
  w.set(p + "context_length", GgufValue::u32(uint32_t(c.max_context)));
  w.set(p + "embedding_length", GgufValue::u32(uint32_t(c.hidden)));
  w.set(p + "block_count", GgufValue::u32(uint32_t(c.n_layers)));
  w.set(p + "feed_forward_length", GgufValue::u32(uint32_t(c.ffn)));
  w.set(p + "attention.head_count", GgufValue::u32(uint32_t(c.n_heads)));
  w.set(p + "attention.head_count_kv", GgufValue::u32(uint32_t(c.n_kv_heads)));
  w.set(p + "attention.key_length", GgufValue::u32(uint32_t(c.head_dim)));
  w.set(p + "attention.value_length", GgufValue::u32(uint32_t(c.head_dim)));
  w.set(p + "rope.dimension_count", GgufValue::u32(uint32_t(c.head_dim)));
  w.set(p + "rope.freq_base", GgufValue::f32(float(c.rope_theta)));
  w.set(p + "attention.layer_norm_rms_epsilon", GgufValue::f32(c.rms_eps));
  w.set(p + "vocab_size", GgufValue::u32(uint32_t(c.vocab)));
  w.set(p + "attention.causal", GgufValue::boolean(false));
  w.set("diffusion.shift_logits", GgufValue::boolean(c.logit_shift != 0));
  if (moe) {
    w.set(p + "expert_count", GgufValue::u32(uint32_t(c.moe.n_experts)));
    w.set(p + "expert_used_count", GgufValue::u32(uint32_t(c.moe.top_k)));
    w.set(p + "expert_feed_forward_length", GgufValue::u32(uint32_t(c.moe.expert_ffn)));
  }
  if (!options.tokenizer_source.empty()) {
    if (is_gguf_file(options.tokenizer_source)) tokenizer_from_gguf(options.tokenizer_source, w);
    else tokenizer_from_dir(options.tokenizer_source, c, w);
  }

  const ModelWeights& W = model.weights;
  const int64_t permute_hd = arch == "llada" ? c.head_dim : 0;  // llama.cpp permutes LLaDA only
  TensorAdder add(w, options.matmul_type);
  add.matrix("token_embd.weight", W.embed);
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string l = "blk." + std::to_string(i) + ".";
    const LayerWeights& L = W.layers[size_t(i)];
    add.vector(l + "attn_norm.weight", L.attn_norm);
    add.matrix(l + "attn_q.weight", L.wq, permute_hd);
    add.matrix(l + "attn_k.weight", L.wk, permute_hd);
    add.matrix(l + "attn_v.weight", L.wv);
    add.vector(l + "attn_q.bias", L.bq, permute_hd);
    add.vector(l + "attn_k.bias", L.bk, permute_hd);
    add.vector(l + "attn_v.bias", L.bv);
    add.matrix(l + "attn_output.weight", L.wo);
    add.vector(l + "attn_q_norm.weight", L.q_norm);
    add.vector(l + "attn_k_norm.weight", L.k_norm);
    add.vector(l + "ffn_norm.weight", L.ffn_norm);
    if (moe) {
      add.matrix_f32(l + "ffn_gate_inp.weight", L.router);
      std::vector<TensorView> gate, up, down;
      for (const LayerWeights::Expert& e : L.experts) {
        gate.push_back(e.w_gate);
        up.push_back(e.w_up);
        down.push_back(e.w_down);
      }
      add.stacked(l + "ffn_gate_exps.weight", gate);
      add.stacked(l + "ffn_up_exps.weight", up);
      add.stacked(l + "ffn_down_exps.weight", down);
    } else {
      add.matrix(l + "ffn_gate.weight", L.w_gate);
      add.matrix(l + "ffn_up.weight", L.w_up);
      add.matrix(l + "ffn_down.weight", L.w_down);
    }
  }
  add.vector("output_norm.weight", W.final_norm);
  if (!c.tied_embeddings) add.matrix("output.weight", W.lm_head);
  w.write(out_path, options.on_tensor);
}

}  // namespace unmask
