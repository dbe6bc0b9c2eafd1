// Loading llama.cpp-layout GGUF models (llada, dream, llada-moe) and their embedded tokenizer.
// Key and tensor names follow llama.cpp's gguf-py constants; see gguf_model.h for the
// q/k permutation.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstring>

#include "models/gguf_model.h"
#include "unmask/error.h"
#include "unmask/gguf.h"
#include "unmask/tokenizer_train.h"

namespace unmask {

namespace {

// GGUF token types (llama.cpp's enum): what the tokenizer does with each id.
enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

}  // namespace

const std::vector<GgufPreTokenizer>& gguf_pre_tokenizers() {
  static const std::vector<GgufPreTokenizer> table = {
      {{"llama-bpe", "llama3", "llama-v3"},
       R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
       false},
      {{"qwen2", "deepseek-r1-qwen"},
       R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
       true},
      {{"gpt-2"}, R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", false},
      // unmask's own code pre-tokenizer (train-tokenizer, the shipped default model): a
      // name of ours, so llama.cpp does not know it; unmask reads such files back.
      {{"unmask-code"}, kCodePreTokenizerPattern, false},
  };
  return table;
}

namespace {

const std::vector<GgufValue>& string_array(const GgufFile& g, const std::string& key, bool required) {
  static const std::vector<GgufValue> none;
  const GgufValue* v = g.find(key);
  if (!v) {
    if (required) throw Error(g.path() + ": missing key '" + key + "'");
    return none;
  }
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString)
    throw Error(g.path() + ": key '" + key + "' must be an array of strings");
  return v->items;
}

int positive_int(const GgufFile& g, const std::string& key) {
  const int64_t v = g.get_int(key);
  if (v <= 0 || v > (int64_t(1) << 30)) throw Error(g.path() + ": key '" + key + "' = " + std::to_string(v) + " is out of range");
  return int(v);
}

// head_count_kv may be one value or one per layer (llama.cpp allows both); unmask needs one.
int kv_heads(const GgufFile& g, const std::string& key, int fallback) {
  const GgufValue* v = g.find(key);
  if (!v) return fallback;
  if (v->type != GgufType::kArray) return positive_int(g, key);
  if (v->items.empty() || !v->items[0].is_integer()) throw Error(g.path() + ": key '" + key + "' must hold integers");
  for (const GgufValue& item : v->items)
    if (!item.is_integer() || item.i != v->items[0].i)
      throw Error(g.path() + ": key '" + key + "' varies per layer; unmask needs one kv head count");
  return int(v->items[0].i);
}

// Binds tensors by name with the shape (unmask order) and dtype checks of WeightBinder.
class GgufBinder {
 public:
  explicit GgufBinder(const GgufFile& g) : g_(g) {}
  TensorView matrix(const std::string& name, int64_t rows, int64_t cols) {
    const TensorView t = shaped(name, {rows, cols});
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16 && !dtype_is_quantized(t.dtype))
      throw Error(g_.path() + ": tensor '" + name + "' has dtype " + std::string(dtype_name(t.dtype)) +
                  "; matmul weights must be a float or block type");
    ++dtype_count_[size_t(t.dtype)];
    return t;
  }
  // llama.cpp's stacked expert tensor [n_experts, rows, cols] as one [rows, cols] view
  // per expert (each a contiguous run of whole rows of the file).
  std::vector<TensorView> stacked(const std::string& name, int64_t experts, int64_t rows, int64_t cols) {
    const TensorView t = shaped(name, {experts, rows, cols});
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16 && !dtype_is_quantized(t.dtype))
      throw Error(g_.path() + ": tensor '" + name + "' has dtype " + std::string(dtype_name(t.dtype)) +
                  "; expert weights must be a float or block type");
    ++dtype_count_[size_t(t.dtype)];
    std::vector<TensorView> per_expert(static_cast<size_t>(experts));
    const size_t bytes = size_t(rows) * dtype_row_bytes(t.dtype, cols);
    for (int64_t e = 0; e < experts; ++e) {
      TensorView& v = per_expert[size_t(e)];
      v = t;
      v.data = static_cast<const uint8_t*>(t.data) + size_t(e) * bytes;
      v.ndim = 2;
      v.shape = {rows, cols, 0, 0};
    }
    return per_expert;
  }
  TensorView vector(const std::string& name, int64_t n) {
    const TensorView t = shaped(name, {n});
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
      throw Error(g_.path() + ": tensor '" + name + "' has dtype " + std::string(dtype_name(t.dtype)) +
                  "; expected F32, F16 or BF16");
    return t;
  }
  // The dtype most projection weights have (GGUF mixes, e.g. Q4_K with Q6_K).
  DType main_dtype() const {
    size_t best = 0;
    for (size_t i = 1; i < dtype_count_.size(); ++i)
      if (dtype_count_[i] > dtype_count_[best]) best = i;
    return DType(best);
  }

 private:
  TensorView shaped(const std::string& name, std::initializer_list<int64_t> shape) {
    const TensorView t = g_.tensor(name);
    TensorView want;  // the expected shape, for the comparison and the message
    want.ndim = int(shape.size());
    std::copy(shape.begin(), shape.end(), want.shape.begin());
    if (t.ndim != want.ndim || !std::equal(shape.begin(), shape.end(), t.shape.begin()))
      throw Error(g_.path() + ": tensor '" + name + "' has shape " + shape_string(t) + ", expected " + shape_string(want));
    return t;
  }
  const GgufFile& g_;
  std::array<size_t, 16> dtype_count_{};
};

// Undoes llama.cpp's LLaDA q/k row interleave into an owned copy (see gguf_model.h).
TensorView unpermute_rows(const TensorView& t, int heads, Model& model) {
  const int64_t rows = t.dim(0), hd = rows / heads, half = hd / 2;
  const size_t row_bytes = t.ndim == 2 ? dtype_row_bytes(t.dtype, t.dim(1)) : dtype_size(t.dtype);
  std::vector<uint8_t>& buf = model.owned.emplace_back(size_t(rows) * row_bytes);
  const auto* src = static_cast<const uint8_t*>(t.data);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t h = r / hd, j = r % hd;
    const int64_t from = h * hd + 2 * (j % half) + j / half;
    std::memcpy(buf.data() + size_t(r) * row_bytes, src + size_t(from) * row_bytes, row_bytes);
  }
  TensorView out = t;
  out.data = buf.data();
  return out;
}

void read_config(const GgufFile& g, const std::string& arch, ModelConfig& c) {
  const std::string p = arch + ".";
  const bool moe = arch == "llada-moe";
  c.family = moe ? "lladamoe" : arch;
  c.architecture = arch == "llada" ? "LLaDAModelLM" : moe ? "LLaDAMoEModelLM" : "DreamModel";
  c.hidden = positive_int(g, p + "embedding_length");
  c.n_layers = positive_int(g, p + "block_count");
  c.n_heads = positive_int(g, p + "attention.head_count");
  c.n_kv_heads = kv_heads(g, p + "attention.head_count_kv", c.n_heads);
  c.ffn = moe ? int(g.get_int(p + "feed_forward_length", 0)) : positive_int(g, p + "feed_forward_length");
  if (moe) {
    // llama.cpp's llada-moe: every layer MoE, softmax router, top-k weights used as they
    // are (not renormalised), no shared expert; QK-norm (its tensors are required below).
    MoeConfig& m = c.moe;
    m.n_experts = positive_int(g, p + "expert_count");
    m.top_k = positive_int(g, p + "expert_used_count");
    if (m.top_k > m.n_experts)
      throw Error(g.path() + ": expert_used_count " + std::to_string(m.top_k) + " exceeds expert_count " +
                  std::to_string(m.n_experts));
    // Without the key llama.cpp takes feed_forward_length / expert_used_count.
    m.expert_ffn = int(g.get_int(p + "expert_feed_forward_length", c.ffn / m.top_k));
    if (m.expert_ffn <= 0) throw Error(g.path() + ": no expert_feed_forward_length (and no feed_forward_length)");
    m.score = RouterScore::kSoftmax;
    m.renormalize = false;
    c.qk_norm = true;
  }
  c.max_context = g.get_int(p + "context_length", 4096);
  c.rms_eps = float(g.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = g.get_float(p + "rope.freq_base", 10000.0);
  if (c.hidden % c.n_heads != 0) throw Error(g.path() + ": embedding_length not divisible by head_count");
  c.head_dim = int(g.get_int(p + "attention.key_length", c.hidden / c.n_heads));
  const int64_t rope_dims = g.get_int(p + "rope.dimension_count", c.head_dim);
  if (rope_dims != c.head_dim)
    throw Error(g.path() + ": key '" + p + "rope.dimension_count' = " + std::to_string(rope_dims) +
                " (partial RoPE) is not supported; head dim is " + std::to_string(c.head_dim));
  if (c.head_dim <= 0 || c.head_dim % 2 != 0)
    throw Error(g.path() + ": head dim " + std::to_string(c.head_dim) + " must be positive and even");
  c.rope_precision = arch == "llada" ? RopePrecision::kF32 : RopePrecision::kCastCosSin;  // HF Qwen-style otherwise
  // llama.cpp's default when the key is absent is "shifted" (the Dream convention).
  c.logit_shift = g.get_bool("diffusion.shift_logits", true) ? 1 : 0;
  const auto special = [&](const char* key) { return int32_t(g.get_int(std::string("tokenizer.ggml.") + key, -1)); };
  c.special.bos = special("bos_token_id");
  c.special.eos = special("eos_token_id");
  c.special.pad = special("padding_token_id");
  c.special.mask = special("mask_token_id");
  c.special.eot = special("eot_token_id");
}

}  // namespace

std::unique_ptr<Model> load_gguf_model(const std::string& path) {
  auto model = std::make_unique<Model>();
  const std::shared_ptr<GgufFile> g = GgufFile::open(path);
  model->gguf = g;
  model->dir = path;
  const std::string arch = g->get_string("general.architecture", "");
  if (arch != "llada" && arch != "dream" && arch != "llada-moe")
    throw Error(path + ": general.architecture '" + arch + "' is not supported (llada, dream, llada-moe)");
  ModelConfig& c = model->config;
  read_config(*g, arch, c);

  GgufBinder b(*g);
  ModelWeights& w = model->weights;
  const TensorView embd = g->tensor("token_embd.weight");
  if (embd.ndim != 2) throw Error(path + ": tensor 'token_embd.weight' must be 2-D, got " + shape_string(embd));
  c.vocab = int(embd.dim(0));
  w.embed = b.matrix("token_embd.weight", c.vocab, c.hidden);
  const int64_t q_out = int64_t(c.n_heads) * c.head_dim, kv_out = int64_t(c.n_kv_heads) * c.head_dim;
  c.qkv_bias = g->has_tensor("blk.0.attn_q.bias");
  const bool permuted = arch == "llada";
  w.layers.resize(size_t(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string l = "blk." + std::to_string(i) + ".";
    LayerWeights& L = w.layers[size_t(i)];
    L.attn_norm = b.vector(l + "attn_norm.weight", c.hidden);
    L.wq = b.matrix(l + "attn_q.weight", q_out, c.hidden);
    L.wk = b.matrix(l + "attn_k.weight", kv_out, c.hidden);
    L.wv = b.matrix(l + "attn_v.weight", kv_out, c.hidden);
    if (c.qkv_bias) {
      L.bq = b.vector(l + "attn_q.bias", q_out);
      L.bk = b.vector(l + "attn_k.bias", kv_out);
      L.bv = b.vector(l + "attn_v.bias", kv_out);
    }
    if (permuted) {
      L.wq = unpermute_rows(L.wq, c.n_heads, *model);
      L.wk = unpermute_rows(L.wk, c.n_kv_heads, *model);
      if (c.qkv_bias) {
        L.bq = unpermute_rows(L.bq, c.n_heads, *model);
        L.bk = unpermute_rows(L.bk, c.n_kv_heads, *model);
      }
    }
    L.wo = b.matrix(l + "attn_output.weight", c.hidden, q_out);
    if (c.qk_norm) {
      L.q_norm = b.vector(l + "attn_q_norm.weight", c.head_dim);
      L.k_norm = b.vector(l + "attn_k_norm.weight", c.head_dim);
    }
    L.ffn_norm = b.vector(l + "ffn_norm.weight", c.hidden);
    if (c.moe.n_experts > 0) {
      const MoeConfig& m = c.moe;
      L.router = b.matrix(l + "ffn_gate_inp.weight", m.n_experts, c.hidden);
      const std::vector<TensorView> gate = b.stacked(l + "ffn_gate_exps.weight", m.n_experts, m.expert_ffn, c.hidden),
                                    up = b.stacked(l + "ffn_up_exps.weight", m.n_experts, m.expert_ffn, c.hidden),
                                    down = b.stacked(l + "ffn_down_exps.weight", m.n_experts, c.hidden, m.expert_ffn);
      L.experts.resize(size_t(m.n_experts));
      for (size_t e = 0; e < L.experts.size(); ++e) L.experts[e] = {gate[e], up[e], down[e]};
      continue;
    }
    L.w_gate = b.matrix(l + "ffn_gate.weight", c.ffn, c.hidden);
    L.w_up = b.matrix(l + "ffn_up.weight", c.ffn, c.hidden);
    L.w_down = b.matrix(l + "ffn_down.weight", c.hidden, c.ffn);
  }
  w.final_norm = b.vector("output_norm.weight", c.hidden);
  c.tied_embeddings = !g->has_tensor("output.weight");
  w.lm_head = c.tied_embeddings ? w.embed : b.matrix("output.weight", c.vocab, c.hidden);
  model->weight_dtype = b.main_dtype();
  return model;
}

Tokenizer load_gguf_tokenizer(const std::string& path) {
  using nlohmann::json;
  const std::shared_ptr<GgufFile> g = GgufFile::open(path);
  const std::string kind = g->get_string("tokenizer.ggml.model", "");
  if (kind != "gpt2")
    throw Error(path + ": tokenizer.ggml.model '" + kind + "' is not supported (only 'gpt2', byte-level BPE)");
  const std::string pre_name = g->get_string("tokenizer.ggml.pre", "gpt-2");
  const GgufPreTokenizer* pre = nullptr;
  std::string known;
  for (const GgufPreTokenizer& p : gguf_pre_tokenizers())
    for (const std::string& n : p.names) {
      if (n == pre_name) pre = &p;
      known += (known.empty() ? "" : ", ") + n;
    }
  if (!pre) throw Error(path + ": tokenizer.ggml.pre '" + pre_name + "' is not supported (known: " + known + ")");

  const std::vector<GgufValue>& tokens = string_array(*g, "tokenizer.ggml.tokens", true);
  const std::vector<GgufValue>& merges = string_array(*g, "tokenizer.ggml.merges", false);
  const GgufValue* types = g->find("tokenizer.ggml.token_type");
  if (types && (types->type != GgufType::kArray || types->items.size() != tokens.size() ||
                (!tokens.empty() && !types->items[0].is_integer())))
    throw Error(path + ": tokenizer.ggml.token_type must be an integer array with one entry per token");
  json vocab = json::object(), added = json::array(), merge_list = json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    const int64_t type = types ? types->items[id].i : kNormal;
    const std::string& text = tokens[id].str;
    if (type == kControl || type == kUserDefined)
      added.push_back({{"id", id}, {"content", text}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", type == kUserDefined}, {"special", type == kControl}});
    else if (type != kUnused || !vocab.contains(text))
      // Unused ids (vocabulary padding, e.g. "[PAD32000]") stay in the vocabulary so that a
      // model that generates one can still be decoded; no merge produces them, so encoding
      // never does.
      vocab[text] = id;
  }
  for (const GgufValue& m : merges) merge_list.push_back(m.str);

  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  json tok = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", pre->nfc ? json{{"type", "NFC"}} : json(nullptr)},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers", json::array({{{"type", "Split"}, {"pattern", {{"Regex", pre->regex}}}, {"behavior", "Isolated"},
                                        {"invert", false}},
                                       byte_level})}}},
      {"post_processor", byte_level},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merge_list}}},
  };
  json cfg = {{"clean_up_tokenization_spaces", false}};
  const auto role = [&](const char* key, const char* field) {
    const int64_t id = g->get_int(std::string("tokenizer.ggml.") + key, -1);
    if (id < 0) return;
    if (id >= int64_t(tokens.size()))
      throw Error(path + ": tokenizer.ggml." + key + " = " + std::to_string(id) + " is not a token id");
    cfg[field] = tokens[size_t(id)].str;
  };
  role("bos_token_id", "bos_token");
  role("eos_token_id", "eos_token");
  role("padding_token_id", "pad_token");
  role("mask_token_id", "mask_token");
  role("eot_token_id", "eot_token");
  role("unknown_token_id", "unk_token");
  const int64_t bos = g->get_int("tokenizer.ggml.bos_token_id", -1);
  if (g->get_bool("tokenizer.ggml.add_bos_token", false) && bos >= 0) {
    const std::string b = cfg["bos_token"].get<std::string>();
    const json bos_piece = {{"SpecialToken", {{"id", b}, {"type_id", 0}}}};
    tok["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", json::array({bos_piece, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", json::array({bos_piece, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
        {"special_tokens", {{b, {{"id", b}, {"ids", {bos}}, {"tokens", {b}}}}}}};
  }
  const std::string chat = g->get_string("tokenizer.chat_template", "");
  if (!chat.empty()) cfg["chat_template"] = chat;
  // Invalid UTF-8 in a token becomes U+FFFD instead of a JSON exception.
  return Tokenizer::from_json(tok.dump(-1, ' ', false, json::error_handler_t::replace),
                              cfg.dump(-1, ' ', false, json::error_handler_t::replace), path);
}

}  // namespace unmask
