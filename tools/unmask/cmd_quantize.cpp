// `unmask quantize IN OUT --type TYPE`: a model folder or .gguf to a GGUF in llama.cpp's
// layout with its projection weights in TYPE (norms stay F32), tokenizer included.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "progress_bar.h"
#include "commands.h"
#include "models/gguf_model.h"
#include "unmask/error.h"
#include "unmask/gguf.h"
#include "unmask/model.h"

namespace unmask::cli {

namespace {

struct QuantizeArgs {
  std::string in, out, type = "q8_0";
};

DType parse_type(const std::string& s) {
  static const std::pair<const char*, DType> kTypes[] = {{"f32", DType::F32},   {"f16", DType::F16},
                                                         {"bf16", DType::BF16}, {"q8_0", DType::Q8_0},
                                                         {"q4_0", DType::Q4_0}, {"q4_k", DType::Q4_K},
                                                         {"q6_k", DType::Q6_K}};
  for (const auto& [name, t] : kTypes)
    if (s == name) return t;
  throw Error("--type '" + s + "' is not one of f32, f16, bf16, q8_0, q4_0, q4_k, q6_k");
}

void run_quantize(const QuantizeArgs& a) {
  const DType type = parse_type(a.type);
  const auto model = load_model(a.in);
  const bool tty = isatty(fileno(stderr));
  const auto t0 = std::chrono::steady_clock::now();
  GgufExportOptions o{.matmul_type = type};
  const bool has_tokenizer = is_gguf_file(a.in) ? model->gguf->find("tokenizer.ggml.tokens") != nullptr
                                                : std::filesystem::exists(a.in + "/tokenizer.json");
  if (has_tokenizer) o.tokenizer_source = a.in;
  o.on_tensor = [&](size_t done, size_t total) {
    if (!tty && done != total) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\r  quantize [%s] %zu/%zu tensors  %.1f s  ETA %.0f s\033[K",
                 progress_bar(int64_t(done), int64_t(total)).c_str(), done, total, s, s / double(done) * double(total - done));
  };
  write_gguf_model(*model, a.out, o);
  std::fprintf(stderr, "\nquantize: %s -> %s (%s, %.1f MiB)%s\n", a.in.c_str(), a.out.c_str(), a.type.c_str(),
               double(std::filesystem::file_size(a.out)) / (1 << 20), has_tokenizer ? "" : ", no tokenizer found");
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand("quantize", "Write a model as GGUF (llama.cpp layout) with quantized weights");
  cmd->add_option("IN", a->in, "Model folder or .gguf")->required();
  cmd->add_option("OUT", a->out, "Output .gguf")->required();
  cmd->add_option("--type", a->type, "f32, f16, bf16, q8_0, q4_0, q4_k or q6_k (rows too short for a block type "
                                     "fall back to q8_0, then f16)")
      ->capture_default_str();
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace unmask::cli
