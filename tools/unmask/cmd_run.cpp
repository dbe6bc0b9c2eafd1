// `unmask run`: generate with a model's reference decoder, watching the canvas.
//
// Defaults follow the model cards, not the reference functions' signatures:
// LLaDA: 128 tokens, steps = tokens, block 32, low_confidence, temperature 0.
// Dream: 128 tokens, steps = tokens, alg entropy, temperature from
// generation_config.json (else 0), and NO inherited top_k=50 (the HF quirk the
// `hf_*` fixtures reproduce is opt-in with --top-k 50). See docs/decoders.md.
#include <omp.h>

#include <cstdio>
#include <optional>

#include "canvas_view.h"
#include "commands.h"
#include "token_args.h"
#include "unmask/decode.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask::cli {

namespace {

struct RunArgs {
  std::string model_dir, weights, prompt, ids;
  int gen_length = 128;
  std::optional<int> steps, block_length, top_k;
  std::optional<double> temperature, top_p;
  double cfg = 0.0;
  std::string remasking = "low_confidence";
  std::optional<std::string> alg;
  uint64_t seed = 0;
  int threads = 0;
  bool no_live = false;
};

void run_generate(const RunArgs& a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  auto model = load_model(a.model_dir, LoadOptions{.weights_file = a.weights});
  const ModelConfig& c = model->config;
  if (a.prompt.empty() == a.ids.empty()) throw Error("give exactly one of -p/--prompt TEXT or --ids 1,2,3");
  if (!a.prompt.empty()) throw Error("text prompts need the tokenizer, which this build lacks; use --ids");
  const std::vector<int32_t> prompt = parse_id_list(a.ids, c.vocab);
  if (a.gen_length <= 0) throw Error("--gen-length must be positive, got " + std::to_string(a.gen_length));
  if (c.max_context > 0 && int64_t(prompt.size()) + a.gen_length > c.max_context)
    throw Error("prompt (" + std::to_string(prompt.size()) + " tokens) + --gen-length " + std::to_string(a.gen_length) +
                " exceeds the model's context of " + std::to_string(c.max_context));
  if (c.special.mask < 0) throw Error(a.model_dir + ": the model declares no mask token (config mask_token_id)");

  CanvasView view([](int32_t id) { return "[" + std::to_string(id) + "]"; }, stdout_is_terminal() && !a.no_live);
  StepCallback on_step = [&](const StepEvent& e) { view.on_step(e); };
  const LogitSource source = model_logit_source(*model);
  std::vector<int32_t> canvas;
  if (c.family == "dream") {
    DreamGenerateOptions o;
    o.max_new_tokens = a.gen_length;
    o.steps = a.steps.value_or(a.gen_length);
    o.temperature = a.temperature.value_or(model->generation.has_temperature ? model->generation.temperature : 0.0);
    o.top_p = a.top_p.value_or(model->generation.has_top_p ? model->generation.top_p : 1.0);
    o.top_k = a.top_k.value_or(0);
    const std::string alg = a.alg.value_or("entropy");
    if (!parse_dream_alg(alg, &o.alg)) throw Error("--alg: unknown algorithm '" + alg + "' (origin, maskgit_plus, topk_margin, entropy)");
    o.mask_id = c.special.mask;
    o.seed = a.seed;
    canvas = dream_generate(source, prompt, o, on_step);
  } else {
    LladaGenerateOptions o;
    o.gen_length = a.gen_length;
    o.steps = a.steps.value_or(a.gen_length);
    o.block_length = a.block_length.value_or(std::min(32, a.gen_length));
    o.temperature = a.temperature.value_or(0.0);
    o.cfg_scale = a.cfg;
    if (!parse_remasking(a.remasking, &o.remasking)) throw Error("--remasking: unknown value '" + a.remasking + "' (low_confidence, random)");
    o.mask_id = c.special.mask;
    o.eos_id = c.special.eos;
    o.eot_id = c.special.eot;
    o.seed = a.seed;
    canvas = llada_generate(source, prompt, o, on_step);
  }
  view.finish();
  std::string out;
  for (size_t i = prompt.size(); i < canvas.size(); ++i) out += (out.empty() ? "" : ",") + std::to_string(canvas[i]);
  std::printf("%s\n", out.c_str());
}

}  // namespace

void register_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Generate text with a diffusion LM, showing the canvas as it unmasks");
  cmd->add_option("-m,--model", a->model_dir, "Model folder")->required();
  cmd->add_option("--weights", a->weights, "Weights file inside the folder");
  cmd->add_option("-p,--prompt", a->prompt, "Prompt text");
  cmd->add_option("--ids", a->ids, "Prompt as token ids, comma-separated");
  cmd->add_option("--gen-length", a->gen_length, "Tokens to generate (fixed canvas of masks)");
  cmd->add_option("--steps", a->steps, "Denoising steps (default: gen-length)");
  cmd->add_option("--block-length", a->block_length, "Semi-autoregressive block length (LLaDA; default 32)");
  cmd->add_option("--temperature", a->temperature, "Sampling temperature (0 = greedy)");
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling mass (Dream)");
  cmd->add_option("--top-k", a->top_k, "Top-k filter (Dream; 0 = none)");
  cmd->add_option("--cfg", a->cfg, "Classifier-free guidance scale (LLaDA)");
  cmd->add_option("--remasking", a->remasking, "LLaDA remasking: low_confidence | random");
  cmd->add_option("--alg", a->alg, "Dream algorithm: origin | maskgit_plus | topk_margin | entropy");
  cmd->add_option("--seed", a->seed, "RNG seed for sampling");
  cmd->add_option("--threads", a->threads, "Worker threads (default: all cores)");
  cmd->add_flag("--no-live", a->no_live, "Do not redraw the canvas while decoding");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace unmask::cli
