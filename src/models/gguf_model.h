// models/gguf_model.h — models in llama.cpp's GGUF layout: loading (gguf_load.cpp) and
// writing (gguf_export.cpp).
//
// Architectures: `llada` (LLaDAModelLM) and `dream` (DreamModel), with llama.cpp's
// tensor names (token_embd, blk.N.attn_q, ..., output_norm, output) and key-values
// (<arch>.block_count, ..., diffusion.shift_logits, tokenizer.ggml.*).
// llama.cpp's converter permutes the rows of LLaDA's q/k projections (per head, the two
// rotary halves are interleaved: HF row h*hd + half*hd/2 + i is GGUF row h*hd + 2*i + half)
// so that its interleaved RoPE equals LLaDA's half-split one. The loader undoes it into
// owned copies of wq/wk (rows move whole, so any block type is copied as is); the writer
// applies it.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "unmask/model.h"
#include "unmask/tokenizer.h"

namespace unmask {

// Loads a .gguf model: config from its key-values, weights borrowed from the mapping
// (Model::gguf keeps it alive). Throws Error naming the file and key / tensor.
std::unique_ptr<Model> load_gguf_model(const std::string& path);

// The tokenizer embedded in a .gguf (tokenizer.ggml.*: model "gpt2" = byte-level BPE,
// pre-tokenizer name -> regex, tokens, token types, merges, special ids, chat template).
Tokenizer load_gguf_tokenizer(const std::string& path);

// Byte-level BPE pre-tokenizers by tokenizer.ggml.pre name: the Split regex of the
// matching HF tokenizer.json, and whether an NFC normalizer runs first.
struct GgufPreTokenizer {
  std::vector<std::string> names;
  const char* regex;
  bool nfc;
};
const std::vector<GgufPreTokenizer>& gguf_pre_tokenizers();

struct GgufExportOptions {
  DType matmul_type = DType::F16;  // projection and LM-head weights (and the embedding table)
  // Where the tokenizer comes from: a model folder with tokenizer.json, or a .gguf
  // whose tokenizer.* key-values are copied. Empty: no tokenizer is written.
  std::string tokenizer_source;
  std::function<void(size_t done, size_t total)> on_tensor;  // progress
};

// Writes `model` as a GGUF in llama.cpp's layout for its family (norms stay F32).
void write_gguf_model(const Model& model, const std::string& out_path, const GgufExportOptions& options);

}  // namespace unmask
