// `unmask run`: generate with a model's reference decoder, watching the canvas.
//
// Defaults follow the model cards, not the reference functions' signatures:
// LLaDA: 128 tokens, steps = tokens, block 32, low_confidence, temperature 0.
// Dream: 128 tokens, steps = tokens, alg entropy, temperature from
// generation_config.json (else 0), and NO inherited top_k=50 (the HF quirk the
// `hf_*` fixtures reproduce is opt-in with --top-k 50). See docs/decoders.md.
#include <omp.h>

#include <cstdio>
#include <filesystem>
#include <optional>

#include "canvas_view.h"
#include "commands.h"
#include "token_args.h"
#include "unmask/chat_template.h"
#include "unmask/decode.h"
#include "unmask/error.h"
#include "unmask/model.h"
#include "unmask/tokenizer.h"

namespace unmask::cli {

namespace {

struct RunArgs {
  std::string model_dir, weights, prompt, ids, system;
  bool raw = false, print_ids = false;
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

// Display text of one token for the live view: its bytes with invalid UTF-8 (a
// token may hold part of a character) replaced, so the terminal never desyncs.
std::string display_piece(const Tokenizer& tok, int32_t id) {
  std::string piece = tok.is_special(id) ? tok.id_to_token(id) : tok.token_bytes(id);
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    const unsigned char c = static_cast<unsigned char>(piece[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= piece.size();
    for (size_t j = 1; ok && j < len; ++j) ok = (static_cast<unsigned char>(piece[i + j]) >> 6) == 2;
    if (ok) {
      out.append(piece, i, len);
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

// The prompt as ids: --ids verbatim, or -p text through the chat template when the
// model has one (and --raw is not given), else the plain encoding.
std::vector<int32_t> prompt_ids(const RunArgs& a, const ModelConfig& c, const Tokenizer* tok) {
  if (!a.ids.empty()) return parse_id_list(a.ids, c.vocab);
  if (!tok) throw Error(a.model_dir + ": no tokenizer.json, so text prompts are unavailable; use --ids");
  if (a.raw) return tok->encode(a.prompt, EncodeOptions{.parse_special = false, .add_special_tokens = true});
  std::vector<ChatMessage> messages;
  if (!a.system.empty()) messages.push_back({"system", a.system});
  messages.push_back({"user", a.prompt});
  ChatPrompt chat = apply_chat_template(*tok, messages);
  if (!chat.templated) std::fprintf(stderr, "unmask: %s has no chat template; using the raw prompt\n", a.model_dir.c_str());
  return chat.ids;
}

// Generated text: the answer up to the first end token (EOS / end of turn), special tokens dropped.
std::string answer_text(const Tokenizer& tok, const ModelConfig& c, const std::vector<int32_t>& generated) {
  std::vector<int32_t> kept;
  for (int32_t id : generated) {
    if (id == c.special.eos || id == c.special.eot) break;
    kept.push_back(id);
  }
  return tok.decode(kept, DecodeOptions{.skip_special = true, .clean_up_spaces = std::nullopt});
}

void run_generate(const RunArgs& a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  auto model = load_model(a.model_dir, LoadOptions{.weights_file = a.weights});
  const ModelConfig& c = model->config;
  if (a.prompt.empty() == a.ids.empty()) throw Error("give exactly one of -p/--prompt TEXT or --ids 1,2,3");
  std::optional<Tokenizer> tokenizer;
  if (std::filesystem::exists(a.model_dir + "/tokenizer.json")) tokenizer = Tokenizer::from_dir(a.model_dir);
  const std::vector<int32_t> prompt = prompt_ids(a, c, tokenizer ? &*tokenizer : nullptr);
  if (prompt.empty()) throw Error("the prompt encodes to no tokens");
  if (a.gen_length <= 0) throw Error("--gen-length must be positive, got " + std::to_string(a.gen_length));
  if (c.max_context > 0 && int64_t(prompt.size()) + a.gen_length > c.max_context)
    throw Error("prompt (" + std::to_string(prompt.size()) + " tokens) + --gen-length " + std::to_string(a.gen_length) +
                " exceeds the model's context of " + std::to_string(c.max_context));
  if (c.special.mask < 0) throw Error(a.model_dir + ": the model declares no mask token (config mask_token_id)");

  CanvasView view(
      [&](int32_t id) { return tokenizer ? display_piece(*tokenizer, id) : "[" + std::to_string(id) + "]"; },
      stdout_is_terminal() && !a.no_live);
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
  const std::vector<int32_t> generated(canvas.begin() + std::ptrdiff_t(prompt.size()), canvas.end());
  if (a.print_ids || !tokenizer) {
    std::string out;
    for (int32_t id : generated) out += (out.empty() ? "" : ",") + std::to_string(id);
    std::printf("%s\n", out.c_str());
  } else {
    std::printf("%s\n", answer_text(*tokenizer, c, generated).c_str());
  }
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
  cmd->add_option("--system", a->system, "System message for the chat template");
  cmd->add_flag("--raw", a->raw, "Encode the prompt as is, without the chat template");
  cmd->add_flag("--print-ids", a->print_ids, "Print the generated token ids instead of text");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace unmask::cli
