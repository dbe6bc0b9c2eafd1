// `unmask run`: generate with unmask's block decoder (default, `--decoder fast`) or a
// model's reference decoder (`--decoder reference`), watching the canvas.
//
// Fast decoder: dynamic length (`--max-tokens`, default 128: the canvas grows block by
// block and stops at the first end token) unless `--gen-length` asks for a fixed canvas;
// `--cache none|prefix|dual|window|delayed`, `--commit topn|threshold|factor|dynamic`,
// `--infill TEMPLATE` (holes `{mask:N}`, `{{` = literal `{`). See docs/decoders.md.
// A one-line summary (forwards, tokens, tokens/s, forwards per token) goes to stderr.
//
// Reference decoder defaults follow the model cards, not the reference functions' signatures:
// LLaDA: 128 tokens, steps = tokens, block 32, low_confidence, temperature 0.
// Dream: 128 tokens, steps = tokens, alg entropy, temperature from
// generation_config.json (else 0), and NO inherited top_k=50 (the HF quirk the
// `hf_*` fixtures reproduce is opt-in with --top-k 50). See docs/decoders.md.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "load_progress.h"
#include "canvas_view.h"
#include "commands.h"
#include "default_model.h"
#include "models/gguf_model.h"
#include "token_args.h"
#include "unmask/chat_template.h"
#include "unmask/decode.h"
#include "unmask/error.h"
#include "unmask/family_decode.h"
#include "unmask/gguf.h"
#include "unmask/model.h"
#include "unmask/tokenizer.h"

namespace unmask::cli {

namespace {

struct RunArgs {
  std::string model_dir, weights, prompt, ids, system;
  bool raw = false, print_ids = false;
  std::optional<int> gen_length, max_tokens;
  std::string decoder = "fast", infill;
  std::optional<std::string> cache, commit, score;
  std::optional<int> refresh_window;
  std::optional<double> threshold, factor;
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

// A LogitSource that counts the model calls of the one it wraps (for the summary).
LogitSource counting_source(const LogitSource& inner, int* calls) {
  LogitSource src = inner;
  src.score = [inner, calls](const std::vector<std::vector<int32_t>>& cv, const std::vector<int32_t>& sl,
                             std::vector<float>& out) {
    ++*calls;
    inner.score(cv, sl, out);
  };
  if (inner.score_cached)
    src.score_cached = [inner, calls](const std::vector<int32_t>& canvas, const CachedQuery& q, std::vector<float>& out) {
      ++*calls;
      inner.score_cached(canvas, q, out);
    };
  return src;
}

// The infill template as a canvas: text segments encoded without special-token parsing
// (the first one through the post-processor, as --raw does for a prompt), each
// {mask:N} as N mask ids.
std::vector<int32_t> infill_canvas(const std::string& tmpl, const Tokenizer& tok, int32_t mask) {
  std::vector<int32_t> canvas;
  for (const InfillSegment& seg : parse_infill_template(tmpl)) {
    if (seg.masks > 0) {
      canvas.insert(canvas.end(), size_t(seg.masks), mask);
      continue;
    }
    const std::vector<int32_t> ids =
        tok.encode(seg.text, EncodeOptions{.parse_special = false, .add_special_tokens = canvas.empty()});
    canvas.insert(canvas.end(), ids.begin(), ids.end());
  }
  return canvas;
}

// Everything the fast decoder takes from the command line and the model.
BlockDecoderOptions fast_options(const RunArgs& a, const Model& model, int length) {
  const ModelConfig& c = model.config;
  BlockDecoderOptions o;
  if (a.gen_length) o.gen_length = *a.gen_length;
  else o.max_tokens = length;
  o.block_length = a.block_length.value_or(std::min(32, length));
  if (a.steps) o.steps = *a.steps;
  const std::string cache = a.cache.value_or("dual");
  if (!parse_block_cache(cache, &o.cache))
    throw Error("--cache: unknown policy '" + cache + "' (none, prefix, dual, window, delayed)");
  const std::string commit = a.commit.value_or(a.factor ? "factor" : "threshold");
  if (!parse_block_commit(commit, &o.commit))
    throw Error("--commit: unknown rule '" + commit + "' (topn, threshold, factor, dynamic)");
  const std::string score = a.score.value_or("confidence");
  if (!parse_block_score(score, &o.score))
    throw Error("--score: unknown score '" + score + "' (confidence, margin, entropy)");
  o.threshold = a.threshold.value_or(0.9);
  o.factor = a.factor.value_or(1.0);
  o.refresh_window = a.refresh_window.value_or(o.refresh_window);
  // generation_config.json's sampling defaults, for any family that sets them (LLaDA's
  // own files set none; the shipped default model does, see docs/default-model.md).
  o.temperature = a.temperature.value_or(model.generation.has_temperature ? model.generation.temperature : 0.0);
  o.top_p = a.top_p.value_or(model.generation.has_top_p ? model.generation.top_p : 1.0);
  o.top_k = a.top_k.value_or(0);
  o.seed = a.seed;
  o.mask_id = c.special.mask;
  for (int32_t id : {c.special.eos, c.special.eot})
    if (id >= 0) o.end_ids.push_back(id);
  return o;
}

void print_summary(int forwards, int tokens, double seconds) {
  std::fprintf(stderr, "unmask: %d forwards, %d tokens in %.2f s: %.1f tokens/s, %.2f forwards/token\n", forwards,
               tokens, seconds, seconds > 0 ? tokens / seconds : 0.0, tokens > 0 ? double(forwards) / tokens : 0.0);
}

void run_generate(const RunArgs& a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  if (a.decoder != "fast" && a.decoder != "reference")
    throw Error("--decoder: unknown decoder '" + a.decoder + "' (reference, fast)");
  const bool fast = a.decoder == "fast";
  if (a.gen_length && a.max_tokens) throw Error("give at most one of --gen-length (fixed canvas) and --max-tokens");
  if (!fast && (a.max_tokens || !a.infill.empty() || a.cache || a.commit || a.score || a.threshold || a.factor ||
                a.refresh_window))
    throw Error("--max-tokens, --infill, --cache, --commit, --score, --threshold, --factor and --refresh-window "
                "need --decoder fast");
  if (fast && (a.cfg != 0 || a.alg || a.remasking != "low_confidence"))
    throw Error("--cfg, --alg and --remasking belong to the reference decoders: add --decoder reference");
  auto model = load_model_warm(a.model_dir, LoadOptions{.weights_file = a.weights});
  const ModelConfig& c = model->config;
  const bool infill = !a.infill.empty();
  if (int(a.prompt.empty()) + int(a.ids.empty()) + int(!infill) != 2)
    throw Error("give exactly one of -p/--prompt TEXT, --ids 1,2,3 or --infill TEMPLATE");
  std::optional<Tokenizer> tokenizer;
  if (model->gguf) tokenizer = load_gguf_tokenizer(model->gguf->path());  // a .gguf embeds its tokenizer
  else if (std::filesystem::exists(a.model_dir + "/tokenizer.json")) tokenizer = Tokenizer::from_dir(a.model_dir);
  if (c.special.mask < 0) throw Error(a.model_dir + ": the model declares no mask token (config mask_token_id)");
  if (infill && !tokenizer) throw Error(a.model_dir + ": no tokenizer.json, so --infill is unavailable");
  if (infill && c.attention_block > 0)
    throw Error("--infill: " + c.family + " attends block-causally (blocks of " + std::to_string(c.attention_block) +
                "), so a hole cannot see the text after it; infilling needs a bidirectional model");
  const std::vector<int32_t> prompt =
      infill ? infill_canvas(a.infill, *tokenizer, c.special.mask) : prompt_ids(a, c, tokenizer ? &*tokenizer : nullptr);
  if (prompt.empty()) throw Error("the prompt encodes to no tokens");
  const int length = infill ? 0 : a.gen_length.value_or(a.max_tokens.value_or(128));
  if (!infill && length <= 0)
    throw Error(std::string(a.gen_length ? "--gen-length" : "--max-tokens") + " must be positive, got " +
                std::to_string(length));
  if (c.max_context > 0 && int64_t(prompt.size()) + length > c.max_context)
    throw Error("prompt (" + std::to_string(prompt.size()) + " tokens) + " +
                (a.gen_length ? "--gen-length " : "--max-tokens ") + std::to_string(length) +
                " exceeds the model's context of " + std::to_string(c.max_context));

  CanvasView view(
      [&](int32_t id) { return tokenizer ? display_piece(*tokenizer, id) : "[" + std::to_string(id) + "]"; },
      stdout_is_terminal() && !a.no_live);
  StepCallback on_step = [&](const StepEvent& e) { view.on_step(e); };
  int forwards = 0;
  // The block-causal families' reference decoders check that the source attends in
  // blocks of their block length; the fast decoder follows the model's own pattern.
  const LogitSourceOptions source_options{.attention_block = fast ? -1 : c.attention_block};
  const LogitSource source = counting_source(model_logit_source(*model, source_options), &forwards);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> canvas;
  size_t answer_begin = prompt.size();
  int tokens = 0;
  if (fast) {
    const BlockDecoderOptions o = fast_options(a, *model, infill ? 1 : length);
    const BlockDecodeResult r = infill ? block_infill(source, prompt, o, on_step) : block_decode(source, prompt, o, on_step);
    canvas = r.canvas;
    tokens = r.generated;
    if (infill) answer_begin = 0;
  } else if (c.attention_block > 0) {  // llada2 / sdar / fast_dllm_v2: their own generate
    const FamilyDecodeOptions fo{
        .steps = a.steps,
        .temperature = a.temperature.value_or(model->generation.has_temperature ? model->generation.temperature : 0.0),
        .top_p = a.top_p.value_or(model->generation.has_top_p ? model->generation.top_p : 1.0),
        .top_k = a.top_k.value_or(0),
        .seed = a.seed};
    canvas = family_reference_generate(*model, source, prompt, length, fo, on_step);
  } else if (c.family == "dream") {
    DreamGenerateOptions o;
    o.max_new_tokens = length;
    o.steps = a.steps.value_or(length);
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
    o.gen_length = length;
    o.steps = a.steps.value_or(length);
    o.block_length = a.block_length.value_or(std::min(32, length));
    o.temperature = a.temperature.value_or(0.0);
    o.cfg_scale = a.cfg;
    if (!parse_remasking(a.remasking, &o.remasking)) throw Error("--remasking: unknown value '" + a.remasking + "' (low_confidence, random)");
    o.mask_id = c.special.mask;
    o.eos_id = c.special.eos;
    o.eot_id = c.special.eot;
    o.seed = a.seed;
    canvas = llada_generate(source, prompt, o, on_step);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  view.finish();
  const std::vector<int32_t> generated(canvas.begin() + std::ptrdiff_t(answer_begin), canvas.end());
  if (!fast) {  // the answer: up to the first end token
    tokens = int(generated.size());
    for (size_t i = 0; i < generated.size(); ++i)
      if (generated[i] == c.special.eos || generated[i] == c.special.eot) {
        tokens = int(i);
        break;
      }
  }
  if (a.print_ids || !tokenizer) {
    std::string out;
    for (int32_t id : generated) out += (out.empty() ? "" : ",") + std::to_string(id);
    std::printf("%s\n", out.c_str());
  } else if (infill) {  // end tokens inside a hole shorten it: skip_special drops them
    std::printf("%s\n", tokenizer->decode(generated, DecodeOptions{.skip_special = true, .clean_up_spaces = std::nullopt}).c_str());
  } else {
    std::printf("%s\n", answer_text(*tokenizer, c, generated).c_str());
  }
  std::fflush(stdout);
  print_summary(forwards, tokens, seconds);
}

}  // namespace

void register_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Generate text with a diffusion LM, showing the canvas as it unmasks");
  cmd->add_option("-m,--model", a->model_dir, "Model folder (default: the shipped models/" +
                                                 std::string(kDefaultModelName) + ", found next to the binary)");
  cmd->add_option("--weights", a->weights, "Weights file inside the folder");
  cmd->add_option("-p,--prompt", a->prompt, "Prompt text");
  cmd->add_option("--ids", a->ids, "Prompt as token ids, comma-separated");
  cmd->add_option("--infill", a->infill,
                  "Fast decoder: fill the holes of a template, e.g. 'def f():\\n{mask:12}\\nf()' ({{ = literal {)");
  cmd->add_option("--decoder", a->decoder, "fast (unmask's block decoder, default) | reference (the model's paper decoder)");
  cmd->add_option("--max-tokens", a->max_tokens,
                  "Fast decoder: answer up to N tokens, canvas grows per block, stops at the end token (default 128)");
  cmd->add_option("--gen-length", a->gen_length, "Tokens to generate on a fixed canvas of masks (reference default 128)");
  cmd->add_option("--steps", a->steps, "Denoising steps (reference default: gen-length; fast: topn/dynamic schedule)");
  cmd->add_option("--block-length", a->block_length, "Semi-autoregressive block length (default 32)");
  cmd->add_option("--cache", a->cache, "Fast decoder KV cache: none | prefix | dual (default) | window | delayed");
  cmd->add_option("--refresh-window", a->refresh_window, "Fast decoder, --cache window|delayed: slots refreshed each side (16)");
  cmd->add_option("--commit", a->commit, "Fast decoder rule: topn | threshold (default) | factor | dynamic");
  cmd->add_option("--threshold", a->threshold, "Fast decoder: threshold / dynamic rule's score threshold (0.9)");
  cmd->add_option("--factor", a->factor, "Fast decoder: factor rule's f (implies --commit factor)");
  cmd->add_option("--score", a->score, "Fast decoder score: confidence (default) | margin | entropy");
  cmd->add_option("--temperature", a->temperature, "Sampling temperature (0 = greedy)");
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling mass (Dream reference, fast decoder)");
  cmd->add_option("--top-k", a->top_k, "Top-k filter (Dream reference, fast decoder; 0 = none)");
  cmd->add_option("--cfg", a->cfg, "Classifier-free guidance scale (LLaDA reference)");
  cmd->add_option("--remasking", a->remasking, "LLaDA reference remasking: low_confidence | random");
  cmd->add_option("--alg", a->alg, "Dream reference algorithm: origin | maskgit_plus | topk_margin | entropy");
  cmd->add_option("--seed", a->seed, "RNG seed for sampling");
  cmd->add_option("--threads", a->threads, "Worker threads (default: all cores)");
  add_device_option(cmd);
  cmd->add_flag("--no-live", a->no_live, "Do not redraw the canvas while decoding");
  cmd->add_option("--system", a->system, "System message for the chat template");
  cmd->add_flag("--raw", a->raw, "Encode the prompt as is, without the chat template");
  cmd->add_flag("--print-ids", a->print_ids, "Print the generated token ids instead of text");
  cmd->callback([a] {
    if (a->model_dir.empty()) a->model_dir = default_model_dir();
    run_generate(*a);
  });
}

}  // namespace unmask::cli
