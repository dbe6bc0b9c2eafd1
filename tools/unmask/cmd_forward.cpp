// `unmask forward`: one model call on given ids; writes raw (unshifted) logits [L, V]
// as float32 .npy, optionally the hidden states [n_layers+1, L, hidden].
#include <omp.h>

#include <cstdio>

#include "load_progress.h"
#include "commands.h"
#include "token_args.h"
#include "unmask/error.h"
#include "unmask/model.h"
#include "unmask/npy.h"

namespace unmask::cli {

namespace {
struct ForwardArgs {
  std::string model_dir, weights, ids, out, hidden_out;
  int threads = 0;
};

void run_forward(const ForwardArgs& a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  auto model = load_model_warm(a.model_dir, LoadOptions{.weights_file = a.weights});
  const ModelConfig& c = model->config;
  ForwardBatch batch;
  batch.tokens = parse_id_list(a.ids, c.vocab);
  const int64_t n = int64_t(batch.tokens.size());
  if (c.max_context > 0 && n > c.max_context)
    throw Error(std::to_string(n) + " tokens exceed the model's context of " + std::to_string(c.max_context));
  for (int32_t i = 0; i < int32_t(n); ++i) {
    batch.positions.push_back(i);
    batch.logit_rows.push_back(i);
  }
  batch.capture_hidden = !a.hidden_out.empty();
  ForwardOutput out;
  forward(*model, batch, &out);
  write_npy(a.out, npy_from_f32(out.logits, {n, c.vocab}));
  if (batch.capture_hidden) write_npy(a.hidden_out, npy_from_f32(out.hidden, {c.n_layers + 1, n, c.hidden}));
  std::fprintf(stderr, "forward: %lld tokens, %.3f GFLOP; logits [%lld, %d] -> %s\n", static_cast<long long>(n),
               out.flops / 1e9, static_cast<long long>(n), c.vocab, a.out.c_str());
}
}  // namespace

void register_forward(CLI::App& app) {
  auto a = std::make_shared<ForwardArgs>();
  auto* cmd = app.add_subcommand("forward", "Run one forward pass and write the raw logits as .npy");
  cmd->add_option("-m,--model", a->model_dir, "Model folder")->required();
  cmd->add_option("--weights", a->weights, "Weights file inside the folder");
  cmd->add_option("--ids", a->ids, "Token ids, comma-separated")->required();
  cmd->add_option("--out", a->out, "Output .npy for logits [L, vocab] float32")->required();
  cmd->add_option("--hidden-out", a->hidden_out, "Optional .npy for hidden states [layers+1, L, hidden]");
  cmd->add_option("--threads", a->threads, "Worker threads");
  cmd->callback([a] { run_forward(*a); });
}

}  // namespace unmask::cli
