// tools/unmask/bench_decode.h — `unmask bench` decoding mode: whole generations with the
// block decoder per cache policy and batch size (bench_decode.cpp).
#pragma once
#include <optional>
#include <string>

#include "unmask/model.h"

namespace unmask::cli {

struct DecodeBenchArgs {
  int prompt_len = 512, gen_length = 256, block_length = 32;
  // Configurations: POLICY[:w=W][:every=R] (W: refresh_window, R: refresh_every), e.g.
  // none,dual,dual:every=8,window:w=4,delayed:w=2.
  std::string caches = "none,prefix,dual,window";
  std::string batches = "1";
  std::optional<double> threshold;  // none: one token per step (top-n, steps = gen_length)
  int refresh_window = 16;
  int max_steps = 0;                // > 0: stop each configuration after N steps and extrapolate
  std::string prompt;               // with -m: decode this text (through the chat template)
  // With -m: one JSON string per line, each prompt decoded under every configuration
  // before the next prompt (so load changes hit all configurations alike).
  std::string prompts_file;
  bool json = false;
};

// Borrows the model. model_dir: the folder of a loaded model ("" for a random model),
// for the tokenizer of --prompt.
void run_decode_bench(const DecodeBenchArgs& args, const Model& model, const std::string& model_dir);

// CPU seconds used by this process so far (all threads): compared with wall time it shows
// how much of the machine a benchmark actually got.
double process_cpu_seconds();

}  // namespace unmask::cli
