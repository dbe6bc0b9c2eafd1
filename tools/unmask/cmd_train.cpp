// `unmask train`: masked-diffusion pretraining / SFT of a llada-family model
// (see docs/training.md). Ctrl-C stops after the current step and writes a resumable
// checkpoint.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>

#include "commands.h"
#include "ops/cpu/peak.h"
#include "unmask/error.h"
#include "unmask/train.h"

namespace unmask::cli {

namespace {

// A signal handler can only reach static storage; this flag is the one bridge from
// SIGINT to the training loop (which polls it between steps).
std::atomic<bool> g_stop_requested{false};

extern "C" void on_sigint(int) { g_stop_requested.store(true); }

struct TrainArgs {
  TrainOptions o;
  std::string preset, compute = "f32", save_dtype = "bf16", time_sampling = "uniform";
  int hidden = 0, layers = 0, heads = 0, ffn = 0, threads = 0, vocab = 4096;
  bool bench = false;
};

DType dtype_arg(const std::string& s, const char* option) {
  if (s == "f32") return DType::F32;
  if (s == "bf16") return DType::BF16;
  throw Error(std::string(option) + " must be f32 or bf16, got '" + s + "'");
}

// One JSON line: speed, achieved GFLOP/s and its fraction of the measured f32 FMA peak
// (or the bf16 dot peak for --compute bf16) on the same threads.
void run_bench(const TrainArgs& a) {
  TrainBenchOptions b;
  b.shape = a.o.shape;
  b.shape.vocab = a.vocab;
  b.batch = a.o.batch;
  b.seq_len = a.o.seq_len;
  b.steps = int(std::min<int64_t>(a.o.steps, 20));
  b.compute = a.o.compute;
  const int threads = omp_get_max_threads();
  const ops::PeakFigures peak = ops::measure_peaks(threads);
  const TrainBenchResult r = bench_training(b);
  const double fma = peak.fma_f32_gflops, dot = peak.bf16_dot_gflops;
  std::printf("{\"hidden\": %d, \"layers\": %d, \"heads\": %d, \"ffn\": %d, \"vocab\": %d, \"batch\": %d, "
              "\"seq_len\": %d, \"threads\": %d, \"compute\": \"%s\", \"tokens_per_s\": %.1f, \"step_s\": %.4f, "
              "\"gflops_per_s\": %.2f, \"cpu_tokens_per_s\": %.1f, \"cpu_gflops_per_s\": %.2f, "
              "\"fma_f32_peak_gflops\": %.1f, \"fraction_of_fma_peak\": %.3f, \"cpu_fraction_of_fma_peak\": %.3f, "
              "\"bf16_dot_peak_gflops\": %.1f}\n",
              b.shape.hidden, b.shape.layers, b.shape.heads, b.shape.ffn, b.shape.vocab, b.batch, b.seq_len, threads,
              a.compute.c_str(), r.tokens_per_s, r.step_s, r.gflops_per_s, r.cpu_tokens_per_s, r.cpu_gflops_per_s, fma,
              fma > 0 ? r.gflops_per_s / fma : 0.0, fma > 0 ? r.cpu_gflops_per_s / fma : 0.0, dot);
}

void run_train(TrainArgs& a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  TrainOptions& o = a.o;
  if (!a.preset.empty()) o.shape = preset_shape(a.preset);
  if (a.hidden > 0) o.shape.hidden = a.hidden;
  if (a.layers > 0) o.shape.layers = a.layers;
  if (a.heads > 0) o.shape.heads = a.heads;
  if (a.ffn > 0) o.shape.ffn = a.ffn;
  const bool shape_given = o.shape.hidden > 0 && o.shape.layers > 0 && o.shape.heads > 0 && o.shape.ffn > 0;
  if (o.resume_dir.empty() && o.init_from.empty() && !shape_given)
    throw Error("train: give --preset tiny|small|medium or all of --hidden --layers --heads --ffn");
  o.compute = dtype_arg(a.compute, "--compute");
  o.time_sampling = time_sampling_from_name(a.time_sampling);
  if (a.bench) {
    run_bench(a);
    return;
  }
  if (o.data_files.empty() || o.tokenizer_dir.empty() || o.out_dir.empty())
    throw Error("train: --data, --tokenizer and --out are required (except with --bench)");
  o.save_dtype = dtype_arg(a.save_dtype, "--save-dtype");
  g_stop_requested.store(false);
  o.stop = &g_stop_requested;
  auto* previous = std::signal(SIGINT, on_sigint);
  try {
    const TrainSummary s = run_training(o);
    std::signal(SIGINT, previous);
    std::fprintf(stderr, "train: steps %lld..%lld, %.0f tokens/s%s\n", static_cast<long long>(s.first_step),
                 static_cast<long long>(s.last_step), s.tokens_per_s, s.interrupted ? " (interrupted)" : "");
    if (s.interrupted) exit_code() = 130;
  } catch (...) {
    std::signal(SIGINT, previous);
    throw;
  }
}

}  // namespace

void register_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  TrainOptions& o = a->o;
  auto* cmd = app.add_subcommand("train", "Train a llada-family diffusion LM (masked-diffusion objective)");
  cmd->add_option("--data", o.data_files, "Training data: text files (one document each) or .jsonl");
  cmd->add_option("--tokenizer", o.tokenizer_dir, "Folder with tokenizer.json (+ tokenizer_config.json)");
  cmd->add_option("--out", o.out_dir, "Checkpoint folder (HF layout + training state)");
  cmd->add_option("--preset", a->preset, "Model size: tiny | small | medium");
  cmd->add_option("--hidden", a->hidden, "Hidden size (overrides the preset)");
  cmd->add_option("--layers", a->layers, "Layers");
  cmd->add_option("--heads", a->heads, "Attention heads");
  cmd->add_option("--ffn", a->ffn, "SwiGLU inner size");
  cmd->add_option("--steps", o.steps, "Total optimizer steps")->capture_default_str();
  cmd->add_option("--batch", o.batch, "Sequences per step")->capture_default_str();
  cmd->add_option("--seq-len", o.seq_len, "Tokens per sequence")->capture_default_str();
  cmd->add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr-ratio", o.min_lr_ratio, "Cosine floor as a fraction of --lr")->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "Linear warmup steps")->capture_default_str();
  cmd->add_option("--beta1", o.beta1, "AdamW beta1")->capture_default_str();
  cmd->add_option("--beta2", o.beta2, "AdamW beta2")->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "AdamW weight decay (matrices only)")->capture_default_str();
  cmd->add_option("--clip", o.clip, "Gradient clipping: max global norm (0 = off)")->capture_default_str();
  cmd->add_option("--eval-data", o.eval_files, "Held-out data (same formats as --data)");
  cmd->add_option("--eval-every", o.eval_every, "Evaluate every N steps (and at the end)")->capture_default_str();
  cmd->add_option("--eval-batches", o.eval_batches, "Held-out estimate: batches of Monte-Carlo samples")
      ->capture_default_str();
  cmd->add_option("--save-every", o.save_every, "Also checkpoint every N steps (0 = at the end)")->capture_default_str();
  cmd->add_option("--log", o.log_path, "JSONL log: one object per step and per evaluation");
  cmd->add_option("--stop-after", o.stop_after, "Checkpoint and stop after this many steps (resumable)");
  cmd->add_option("--resume", o.resume_dir, "Continue exactly from this checkpoint folder");
  cmd->add_option("--init-from", o.init_from,
                  "Start a new run from this checkpoint's weights and shape (fresh optimizer and schedule)");
  cmd->add_flag("--sft", o.sft, "SFT: .jsonl with prompt/response; only the response is masked");
  cmd->add_option("--seed", o.seed, "Seed of init, data order and masks")->capture_default_str();
  cmd->add_option("--time-sampling", a->time_sampling,
                  "Masking times: uniform (LLaDA, t ~ U(0,1]) | bell (t ~ Beta(2,2), stratified)")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Worker threads (default: all cores)");
  cmd->add_option("--compute", a->compute, "Matmul precision: f32 | bf16 (master weights stay f32)")
      ->capture_default_str();
  cmd->add_option("--save-dtype", a->save_dtype, "model.safetensors dtype: bf16 | f32")->capture_default_str();
  cmd->add_flag("!--no-progress", o.progress, "No progress bar");
  cmd->add_flag("--bench", a->bench, "Time training steps on random tokens (no data needed) and exit");
  cmd->add_option("--vocab", a->vocab, "Vocabulary size for --bench")->capture_default_str();
  cmd->callback([a] { run_train(*a); });
}

}  // namespace unmask::cli
