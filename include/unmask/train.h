// unmask/train.h — masked-diffusion training (LLaDA objective) of `llada`-family models.
//
// run_training() owns everything it builds: the f32 master parameters, AdamW moments, the
// tokenized corpus and the activation workspace. It borrows only the options (and the
// stop flag they point to). Checkpoints are HF model folders (config.json,
// model.safetensors, tokenizer files) plus training_state.json/.safetensors; see
// docs/training.md for the objective, the file formats and exact resume.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "unmask/tensor.h"

namespace unmask {

// Dimensions of a llada-family model (no bias, untied head, n_kv_heads = n_heads).
struct ModelShape {
  int hidden = 0, layers = 0, heads = 0, ffn = 0, vocab = 0;
  double rope_theta = 10000.0;
  double rms_eps = 1e-5;
  int max_context = 4096;  // written to config.json (max_sequence_length)
};

// How the per-sequence masking times t are drawn (docs/training.md). kUniform is
// LLaDA's t ~ U(0, 1]; kBell draws t from Beta(2, 2) (more sequences at middle mask
// ratios, where a masked token's neighbours are often visible and the locality of code
// is learned first) and keeps the 1/p weight of each masked token.
enum class TimeSampling { kUniform, kBell };
const char* time_sampling_name(TimeSampling s);
// Throws Error naming the value when it is not "uniform" or "bell".
TimeSampling time_sampling_from_name(const std::string& name);

// Named sizes ("tiny", "small", "medium"); vocab is left 0 (it comes from the tokenizer).
// Throws Error for an unknown name.
ModelShape preset_shape(const std::string& name);
// Throws Error naming the field when a dimension is non-positive or heads does not
// divide hidden into an even head_dim.
void validate_shape(const ModelShape& shape);

struct TrainOptions {
  std::vector<std::string> data_files;  // .txt (one document per file) or .jsonl (see docs/training.md)
  std::vector<std::string> eval_files;  // held-out data, same formats; empty = no evaluation
  std::string tokenizer_dir;            // tokenizer.json (+ tokenizer_config.json); needs mask and eos tokens
  std::string out_dir;                  // checkpoint folder (written at the end, every save_every, on stop)
  std::string log_path;                 // JSONL log; empty = none
  std::string resume_dir;               // continue from this checkpoint folder
  std::string init_from;                // new run starting from this checkpoint's f32 weights
                                        // (its shape; fresh AdamW moments and schedule)
  ModelShape shape;                     // vocab 0 = the tokenizer's size
  int64_t steps = 50;
  int batch = 8, seq_len = 128;
  double lr = 1e-3, min_lr_ratio = 0.1;  // cosine from lr down to lr * min_lr_ratio
  int64_t warmup = 10;
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8, weight_decay = 0.1, clip = 1.0;
  int64_t eval_every = 0;  // 0 = only at the end (when eval_files given)
  int eval_batches = 4;    // batches of the fixed held-out estimate
  int64_t save_every = 0;  // 0 = only at the end
  bool sft = false;
  uint64_t seed = 1;
  TimeSampling time_sampling = TimeSampling::kUniform;
  DType compute = DType::F32;     // matmul operands: F32 or BF16 (master weights stay f32)
  DType save_dtype = DType::BF16; // model.safetensors dtype: F32 or BF16
  bool progress = true;           // progress bar on stderr
  const std::atomic<bool>* stop = nullptr;  // borrowed; when set, checkpoint and return
  int64_t stop_after = 0;  // > 0: stop (as if interrupted) once this many steps are done
};

struct TrainSummary {
  int64_t first_step = 0, last_step = 0;  // steps run: [first_step, last_step)
  std::vector<double> losses;             // one per step run
  double tokens_per_s = 0;
  bool interrupted = false;
};

// Runs (or resumes) training. Throws Error naming the file / option at fault.
TrainSummary run_training(const TrainOptions& options);

// Speed of full training steps (forward, backward, clipping, AdamW) on random tokens.
struct TrainBenchOptions {
  ModelShape shape;  // vocab must be set
  int batch = 8, seq_len = 128, steps = 5;  // steps timed after one warm-up step
  DType compute = DType::F32;
};
struct TrainBenchResult {
  double step_s = 0;        // fastest timed step, wall clock
  double tokens_per_s = 0;  // batch * seq_len / step_s
  double gflops_per_s = 0;  // FLOPs counted by the step (matmuls + attention) / step_s
  // The same from process CPU time / threads (fastest step): what the step costs when
  // other processes time-slice the cores (spin-waiting threads still count as busy).
  double cpu_step_s = 0, cpu_tokens_per_s = 0, cpu_gflops_per_s = 0;
};
TrainBenchResult bench_training(const TrainBenchOptions& options);

}  // namespace unmask
