// GGUF models: the tiny fixtures written in llama.cpp's layout (incl. its LLaDA q/k
// permutation) load back to the same forward logits, greedy trajectory and tokenizer
// as the safetensors folders.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "models/gguf_model.h"
#include "ops/cpu/qmatmul.h"
#include "test_util.h"
#include "unmask/decode.h"
#include "unmask/eval.h"
#include "unmask/gguf.h"
#include "unmask/quant.h"
#include "unmask/tokenizer.h"

namespace unmask {
namespace {

using test::TempDir;
using test::throws_error;

std::vector<int32_t> some_ids(const Model& m) {
  std::vector<int32_t> ids;
  for (int i = 0; i < 23; ++i) ids.push_back(int32_t((i * 37 + 11) % m.config.vocab));
  ids[5] = m.config.special.mask;
  return ids;
}

// A copy of `m` whose matmul weights are replaced by f32 copies of themselves passed
// through `type` (what a GGUF of that type holds), the same rows in the same order.
std::unique_ptr<Model> rounded_copy(const std::string& dir, DType type) {
  auto m = load_model(dir);
  auto round = [&](TensorView& t) {
    if (t.empty()) return;
    const int64_t rows = t.dim(0), k = t.dim(1);
    std::vector<uint8_t> q(dtype_row_bytes(type, k));
    std::vector<uint8_t>& buf = m->owned.emplace_back(size_t(rows * k) * 4);
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < rows; ++r) {
      quant::dequantize_row(t.dtype, t.row_bytes(r), row.data(), k);
      quant::quantize_row(type, row.data(), q.data(), k);
      quant::dequantize_row(type, q.data(), reinterpret_cast<float*>(buf.data()) + r * k, k);
    }
    t.data = buf.data();
    t.dtype = DType::F32;
  };
  const bool tied = m->weights.lm_head.data == m->weights.embed.data;
  round(m->weights.embed);
  if (tied) m->weights.lm_head = m->weights.embed;
  else round(m->weights.lm_head);
  for (auto& L : m->weights.layers)
    for (TensorView* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) round(*t);
  m->weight_dtype = DType::F32;
  return m;
}

std::string export_gguf(const std::string& dir, DType type, const TempDir& tmp) {
  const std::string out = tmp.file(std::string(dtype_name(type)) + ".gguf");
  write_gguf_model(*load_model(dir), out, {.matmul_type = type, .tokenizer_source = dir});
  return out;
}

// Worst |a - b| over the logits must be <= tol + rel_tol * max |a|.
void expect_same_logits(const Model& a, const Model& b, float tol, const std::string& what, float rel_tol = 0) {
  const std::vector<int32_t> ids = some_ids(a);
  const std::vector<float> la = test::full_forward_logits(a, ids), lb = test::full_forward_logits(b, ids);
  ASSERT_EQ(la.size(), lb.size());
  float worst = 0, largest = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    worst = std::max(worst, std::fabs(la[i] - lb[i]));
    largest = std::max(largest, std::fabs(la[i]));
  }
  EXPECT_LE(worst, tol + rel_tol * largest) << what;
}

std::vector<int32_t> greedy(const Model& m) {
  LladaGenerateOptions o;
  o.gen_length = 16;
  o.block_length = 8;
  o.steps = 8;
  o.mask_id = m.config.special.mask;
  return llada_generate(model_logit_source(m), {3, 17, 42, 99}, o);
}

TEST(GgufModel, LladaF32EqualsSafetensorsAndIsPermutedOnDisk) {
  TempDir tmp;
  const std::string path = export_gguf(test::llada_dir(), DType::F32, tmp);
  const auto st = load_model(test::llada_dir());
  const auto gg = load_model(path);  // the load_model hook picks the GGUF loader
  EXPECT_EQ(gg->config.family, "llada");
  EXPECT_EQ(gg->config.logit_shift, 0);
  EXPECT_EQ(gg->config.n_kv_heads, st->config.n_kv_heads);
  EXPECT_EQ(gg->config.special.mask, st->config.special.mask);
  EXPECT_EQ(gg->config.tied_embeddings, st->config.tied_embeddings);
  // On disk, q row 1 of head 0 is HF row head_dim/2 (the interleave llama.cpp applies).
  const auto file = GgufFile::open(path);
  const TensorView q_disk = file->tensor("blk.0.attn_q.weight"), q_hf = st->weights.layers[0].wq;
  const int64_t hd = st->config.head_dim, k = q_hf.dim(1);
  EXPECT_EQ(std::memcmp(q_disk.row_bytes(1), q_hf.row_bytes(hd / 2), size_t(k) * 4), 0);
  EXPECT_NE(std::memcmp(q_disk.row_bytes(1), q_hf.row_bytes(1), size_t(k) * 4), 0);
  // Same f32 weights, same kernels: identical logits.
  expect_same_logits(*st, *gg, 0.0f, "llada f32");
}

TEST(GgufModel, LladaF16MatchesF16RoundedSafetensorsAndTrajectory) {
  TempDir tmp;
  const auto gg = load_model(export_gguf(test::llada_dir(), DType::F16, tmp));
  const auto ref = rounded_copy(test::llada_dir(), DType::F16);
  EXPECT_EQ(gg->weight_dtype, DType::F16);
  // Same values; the F16 path dequantizes panels and runs the f32 kernel with a different
  // column blocking, so only the summation order may differ (logits here are O(1)).
  expect_same_logits(*ref, *gg, 1e-5f, "llada f16");
  EXPECT_EQ(greedy(*gg), greedy(*ref));
}

TEST(GgufModel, QuantizedTypesMatchTheirDequantizedWeights) {
  TempDir tmp;
  for (DType t : {DType::Q8_0, DType::Q4_0}) {  // the tiny model's rows (64, 128) are too short for K blocks
    const auto gg = load_model(export_gguf(test::llada_dir(), t, tmp));
    EXPECT_EQ(gg->weight_dtype, t);
    if (ops::int8_path(ops::best_isa(), t))
      // The int8 kernels also round every matmul input to 8 bits per 32-value block (<= 1/254
      // of the block's max each, as the weights): over 3 layers x 7 matmuls that moves this
      // model's logits (|max| ~ 18) by 0.29 (Q8_0) and 0.25 (Q4_0, measured 2026-11-23);
      // 3% of the largest logit bounds it.
      expect_same_logits(*rounded_copy(test::llada_dir(), t), *gg, 0.0f, std::string(dtype_name(t)) + " int8", 0.03f);
    else
      expect_same_logits(*rounded_copy(test::llada_dir(), t), *gg, 1e-5f, std::string(dtype_name(t)));
  }
  // Q4_K rows need 256 values: the writer falls back to Q8_0 for the tiny model's rows.
  const auto k4 = load_model(export_gguf(test::llada_dir(), DType::Q4_K, tmp));
  EXPECT_EQ(k4->weights.layers[0].wq.dtype, DType::Q8_0);
}

TEST(GgufModel, DreamF32EqualsSafetensors) {
  TempDir tmp;
  const auto st = load_model(test::dream_dir());
  const auto gg = load_model(export_gguf(test::dream_dir(), DType::F32, tmp));
  EXPECT_EQ(gg->config.family, "dream");
  EXPECT_EQ(gg->config.logit_shift, 1);
  EXPECT_TRUE(gg->config.qkv_bias);
  expect_same_logits(*st, *gg, 0.0f, "dream f32");
}

// LLaDA-MoE in llama.cpp's llada-moe layout: experts stacked into 3-D tensors, F32
// router, QK-norm vectors; loads back to the same forward.
TEST(GgufModel, LladaMoeEqualsSafetensorsWithStackedExperts) {
  TempDir tmp;
  const std::string dir = test::data_dir() + "/lladamoe-tiny";
  const auto st = load_model(dir);
  const std::string path = export_gguf(dir, DType::F32, tmp);
  const auto gg = load_model(path);
  EXPECT_EQ(gg->config.family, "lladamoe");
  EXPECT_EQ(gg->config.moe.n_experts, st->config.moe.n_experts);
  EXPECT_EQ(gg->config.moe.top_k, st->config.moe.top_k);
  EXPECT_EQ(gg->config.moe.expert_ffn, st->config.moe.expert_ffn);
  EXPECT_TRUE(gg->config.qk_norm);
  EXPECT_EQ(gg->config.logit_shift, 0);
  const auto file = GgufFile::open(path);
  EXPECT_EQ(file->get_string("general.architecture", ""), "llada-moe");
  const TensorView gate = file->tensor("blk.1.ffn_gate_exps.weight");
  ASSERT_EQ(gate.ndim, 3);
  EXPECT_EQ(gate.dim(0), st->config.moe.n_experts);
  EXPECT_EQ(gate.dim(1), st->config.moe.expert_ffn);
  EXPECT_EQ(gate.dim(2), st->config.hidden);
  // Expert 5's rows sit at their slice of the stack.
  const TensorView e5 = st->weights.layers[1].experts[5].w_gate;
  EXPECT_EQ(std::memcmp(static_cast<const uint8_t*>(gate.data) + size_t(5 * e5.dim(0) * e5.dim(1)) * 4, e5.data,
                        size_t(e5.dim(0) * e5.dim(1)) * 4),
            0);
  expect_same_logits(*st, *gg, 0.0f, "lladamoe f32");
  // F16 experts: every weight rounded to 11 bits, logits (|max| ~ 3) move by ~1e-3.
  const auto g16 = load_model(export_gguf(dir, DType::F16, tmp));
  EXPECT_EQ(g16->weight_dtype, DType::F16);
  expect_same_logits(*st, *g16, 0.0f, "lladamoe f16", 0.01f);
}

TEST(GgufModel, EmbeddedTokenizerEqualsTheFolders) {
  TempDir tmp;
  const std::vector<std::string> texts = {"Hello world", "  two  spaces\n\nand lines", "numbers 12345 and ünïcödé",
                                          "<|endoftext|> special", "it's we'll"};
  for (const std::string& dir : {test::llada_dir(), test::dream_dir()}) {
    const Tokenizer want = Tokenizer::from_dir(dir);
    const Tokenizer got = load_gguf_tokenizer(export_gguf(dir, DType::F32, tmp));
    for (const std::string& s : texts) {
      for (bool special : {false, true}) {
        const auto ids = want.encode(s, {.parse_special = special});
        EXPECT_EQ(got.encode(s, {.parse_special = special}), ids) << dir << ": " << s;
        EXPECT_EQ(got.decode(ids), want.decode(ids)) << dir << ": " << s;
      }
    }
    EXPECT_EQ(got.special_id(TokenRole::kEos), want.special_id(TokenRole::kEos)) << dir;
    EXPECT_EQ(got.chat_template(), want.chat_template()) << dir;
  }
}

// llama.cpp pads vocabularies with UNUSED tokens (type 5); a model may still generate their
// ids, so the embedded tokenizer keeps them: they decode, and encoding never produces them.
TEST(GgufModel, UnusedPaddingTokensKeepTheirIds) {
  TempDir tmp;
  const auto exported = GgufFile::open(export_gguf(test::llada_dir(), DType::F32, tmp));
  GgufWriter w;
  for (const auto& [key, value] : exported->header().kvs) w.set(key, value);
  std::vector<GgufValue> tokens = exported->find("tokenizer.ggml.tokens")->items;
  std::vector<GgufValue> types;
  if (const GgufValue* t = exported->find("tokenizer.ggml.token_type")) types = t->items;
  else types.assign(tokens.size(), GgufValue::i32(1));
  const int32_t first_pad = int32_t(tokens.size());
  for (const char* pad : {"[PAD0]", "[PAD1]"}) {
    tokens.push_back(GgufValue::string(pad));
    types.push_back(GgufValue::i32(5));
  }
  w.set("tokenizer.ggml.tokens", GgufValue::array(GgufType::kString, tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::array(GgufType::kI32, types));
  const std::string padded = tmp.file("padded.gguf");
  w.write(padded);

  const Tokenizer tok = load_gguf_tokenizer(padded);
  EXPECT_EQ(tok.vocab_size(), first_pad + 2);
  EXPECT_EQ(tok.decode(std::vector<int32_t>{first_pad + 1}), "[PAD1]");
  for (int32_t id : tok.encode("text [PAD0] [PAD1]", {.parse_special = true})) EXPECT_LT(id, first_pad);
}

// Issue 7's quantization-quality bar on the shipped default model: the masked-diffusion NLL
// of its q8_0 / q4_k GGUF stays within 0.3% / 3% of its bf16 weights. Same windows and masks
// for every weight type (same seed), so the difference is the weights', not Monte-Carlo noise.
TEST(GgufModel, DefaultModelQuantizedNllStaysNearBf16) {
  const std::string dir = test::data_dir() + "/../../models/unmask-coder-tiny";
  const std::string text = test::read_text(test::data_dir() + "/../../scripts/reference/train_reference.py");
  const std::vector<int32_t> tokens = Tokenizer::from_dir(dir).encode(text);
  EvalOptions o;
  o.samples = 48;
  o.seq_len = 128;
  o.seed = 3;
  const double bf16 = evaluate_likelihood(*load_model(dir), tokens, o).nats_per_token;
  TempDir tmp;
  const std::string q8_path = export_gguf(dir, DType::Q8_0, tmp);
  // `-m FOLDER --weights NAME.gguf` loads the GGUF as the whole model (no config.json here).
  const auto q8_model = load_model(tmp.path(), LoadOptions{.weights_file = q8_path.substr(tmp.path().size() + 1)});
  ASSERT_TRUE(q8_model->gguf);
  const double q8 = evaluate_likelihood(*q8_model, tokens, o).nats_per_token;
  const double q4k = evaluate_likelihood(*load_model(export_gguf(dir, DType::Q4_K, tmp)), tokens, o).nats_per_token;
  EXPECT_LT(std::abs(q8 / bf16 - 1), 0.003) << "bf16 " << bf16 << " q8_0 " << q8;
  EXPECT_LT(std::abs(q4k / bf16 - 1), 0.03) << "bf16 " << bf16 << " q4_k " << q4k;
  EXPECT_NE(q4k, bf16);  // the q4_k weights really differ
}

TEST(GgufModel, RejectsUnsupportedFilesByName) {
  TempDir tmp;
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.write(tmp.file("llama.gguf"));
  EXPECT_TRUE(throws_error([&] { load_model(tmp.file("llama.gguf")); },
                           {"llama.gguf", "general.architecture 'llama' is not supported"}));
  GgufWriter no_tensors;
  no_tensors.set("general.architecture", GgufValue::string("llada"));
  for (const char* key : {"llada.embedding_length", "llada.block_count", "llada.feed_forward_length"})
    no_tensors.set(key, GgufValue::u32(64));
  no_tensors.set("llada.attention.head_count", GgufValue::u32(4));
  no_tensors.write(tmp.file("empty.gguf"));
  EXPECT_TRUE(throws_error([&] { load_model(tmp.file("empty.gguf")); }, {"missing tensor 'token_embd.weight'"}));
  GgufWriter tok;
  tok.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  tok.set("tokenizer.ggml.pre", GgufValue::string("mystery"));
  tok.write(tmp.file("tok.gguf"));
  EXPECT_TRUE(throws_error([&] { load_gguf_tokenizer(tmp.file("tok.gguf")); },
                           {"tokenizer.ggml.pre 'mystery' is not supported"}));
}

}  // namespace
}  // namespace unmask
