// `unmask eval -m MODEL --data FILE`: held-out negative log-likelihood of a masked
// diffusion LM on a text file (LLaDA's Monte-Carlo estimator, unmask/eval.h), in
// nats/token and bits/byte with standard errors. The text is encoded with the model's
// own tokenizer, without special tokens. Progress on stderr; --json for scripts.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "progress_bar.h"
#include "load_progress.h"
#include "commands.h"
#include "models/gguf_model.h"
#include "unmask/error.h"
#include "unmask/eval.h"
#include "unmask/gguf.h"
#include "unmask/model.h"
#include "unmask/tokenizer.h"

namespace unmask::cli {
namespace {

struct EvalArgs {
  std::string model_dir, weights, data;
  int samples = 128, seq_len = 128, batch = 8, threads = 0;
  uint64_t seed = 0;
  bool json = false;
};

void run_eval(const EvalArgs& a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  std::ifstream f(a.data, std::ios::binary);
  if (!f) throw Error(a.data + ": cannot open");
  const std::string text(std::istreambuf_iterator<char>(f), {});
  auto model = load_model_warm(a.model_dir, LoadOptions{.weights_file = a.weights});
  const Tokenizer tok = model->gguf ? load_gguf_tokenizer(model->gguf->path()) : Tokenizer::from_dir(a.model_dir);
  const std::vector<int32_t> tokens = tok.encode(text, EncodeOptions{.parse_special = false, .add_special_tokens = false});
  EvalOptions o;
  o.samples = a.samples;
  o.seq_len = a.seq_len;
  o.seed = a.seed;
  o.batch = a.batch;
  o.bytes = int64_t(text.size());
  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  o.on_progress = [&](int done, int total) {
    const double s = elapsed();
    std::fprintf(stderr, "\r  eval [%s] %d/%d samples  %.1f s  ETA %.0f s\033[K", progress_bar(done, total).c_str(), done,
                 total, s, s / done * (total - done));
  };
  const EvalResult r = evaluate_likelihood(*model, tokens, o);
  std::fprintf(stderr, "\n");
  const double seconds = elapsed();
  if (a.json) {
    const nlohmann::json j = {{"model", a.model_dir},          {"data", a.data},
                              {"weights", a.weights},          {"tokens", r.tokens},
                              {"bytes", r.bytes},              {"windows", r.windows},
                              {"seq_len", r.seq_len},          {"samples", r.samples},
                              {"seed", a.seed},                {"nats_per_token", r.nats_per_token},
                              {"nats_per_token_se", r.nats_per_token_se},
                              {"bits_per_byte", r.bits_per_byte},
                              {"bits_per_byte_se", r.bits_per_byte_se},
                              {"seconds", seconds}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("data        %s: %lld bytes, %lld tokens (%.3f bytes/token), %d windows of %d\n", a.data.c_str(),
              (long long)r.bytes, (long long)r.tokens, double(r.bytes) / double(r.tokens), r.windows, r.seq_len);
  std::printf("samples     %d (seed %llu) in %.1f s\n", r.samples, (unsigned long long)a.seed, seconds);
  std::printf("nll         %.4f +- %.4f nats/token  (perplexity bound %.2f)\n", r.nats_per_token, r.nats_per_token_se,
              std::exp(r.nats_per_token));
  std::printf("bits/byte   %.4f +- %.4f\n", r.bits_per_byte, r.bits_per_byte_se);
}

}  // namespace

void register_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Held-out NLL (nats/token, bits/byte +- standard error) of a diffusion LM");
  cmd->add_option("-m,--model", a->model_dir, "Model folder (with tokenizer.json)")->required();
  cmd->add_option("--weights", a->weights, "Weights file inside the folder");
  cmd->add_option("--data", a->data, "Text file to evaluate")->required();
  cmd->add_option("--samples", a->samples, "Monte-Carlo samples, one forward of seq-len tokens each (default 128)");
  cmd->add_option("--seq-len", a->seq_len, "Tokens per window (default 128)");
  cmd->add_option("--seed", a->seed, "Seed of the windows / mask draws (default 0)");
  cmd->add_option("--batch", a->batch, "Samples per forward call (default 8)");
  cmd->add_option("--threads", a->threads, "Worker threads (default: all cores)");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace unmask::cli
