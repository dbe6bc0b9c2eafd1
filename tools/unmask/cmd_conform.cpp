// `unmask conform DIR...`: checks the engine against a fixture directory in the format
// of shared/fixtures (README there). manifest.json is authoritative: exactly the cases
// it lists under "forward" and "generate" run, and everything (files, prompt, kwargs,
// ids) comes from the manifest and the model files — never from case names.
// One line per case (PASS / FAIL <what differs> / SKIP <why>), then the totals;
// exit code 1 when anything failed. A case with missing or malformed files FAILs.
#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>

#include "commands.h"
#include "conform_common.h"
#include "conform_fixture.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask::cli {

namespace {

using namespace conform;

enum class GenKind { kLladaRef, kFastLlada, kDream, kFastDream, kFastDreamBlock, kUnknown };

struct GenFunction {
  GenKind kind = GenKind::kUnknown;
  CachePolicy cache = CachePolicy::kNone;  // kFastLlada: which generate variant
};

// The identifier right after `marker` in `f` ("" when `marker` is absent).
std::string name_after(const std::string& f, const std::string& marker) {
  const size_t at = f.find(marker);
  if (at == std::string::npos) return "";
  size_t end = at + marker.size();
  while (end < f.size() && (std::isalnum(static_cast<unsigned char>(f[end])) || f[end] == '_')) ++end;
  return f.substr(at + marker.size(), end - at - marker.size());
}

// The manifest's "function" names the upstream function (repo, file, name).
GenFunction classify(const std::string& f) {
  const auto has = [&](const char* s) { return f.find(s) != std::string::npos; };
  GenFunction g;
  if (has("Fast-dLLM")) {
    const std::string llada = name_after(f, "llada/generate.py::");
    if (llada == "generate") g.kind = GenKind::kFastLlada;
    else if (llada == "generate_with_prefix_cache") g = {GenKind::kFastLlada, CachePolicy::kPrefix};
    else if (llada == "generate_with_dual_cache") g = {GenKind::kFastLlada, CachePolicy::kDual};
    else if (has("dream/model/generation_utils_block.py") && has("DreamGenerationMixin.diffusion_generate"))
      g.kind = GenKind::kFastDreamBlock;
    else if (has("dream/model/generation_utils.py") && has("DreamGenerationMixin.diffusion_generate"))
      g.kind = GenKind::kFastDream;
    return g;
  }
  if (has("ML-GSAI/LLaDA") && name_after(f, "generate.py::") == "generate") g.kind = GenKind::kLladaRef;
  else if (has("DreamGenerationMixin.diffusion_generate")) g.kind = GenKind::kDream;
  return g;
}

bool is_dream(GenKind k) { return k == GenKind::kDream || k == GenKind::kFastDream || k == GenKind::kFastDreamBlock; }

DreamGenerateOptions dream_options(GenKind kind, const Fixture& fx, const Kwargs& kw, const std::vector<int32_t>& prompt) {
  DreamGenerateOptions o;
  if (kw.has("max_new_tokens")) o.max_new_tokens = kw.integer("max_new_tokens", 0);
  else if (kw.has("max_length")) o.max_new_tokens = kw.integer("max_length", 0) - int(prompt.size());
  else fail("kwargs: neither max_new_tokens nor max_length");
  o.steps = kw.integer("steps", 512);
  o.eps = kw.number("eps", 1e-3);
  // Not passed -> inherited from the model config's legacy generation defaults (README).
  o.temperature = kw.number("temperature", 1.0);
  o.alg_temp = kw.number("alg_temp", 0.0);
  o.threshold = kw.number("threshold", 0.9);
  if (!parse_dream_alg(kw.string("alg", "origin"), &o.alg)) fail("kwargs.alg '" + kw.string("alg", "") + "': unknown");
  if (o.alg == DreamAlg::kConfidenceThreshold && kind == GenKind::kDream)
    fail("alg confidence_threshold exists only in Fast-dLLM's generation_utils.py / generation_utils_block.py");
  o.mask_id = case_mask_id(fx, kw, "mask_token_id");
  o.top_k = kw.has("top_k") ? (kw.is_null("top_k") ? 0 : kw.integer("top_k", 0)) : 50;
  o.top_p = kw.number("top_p", 1.0);
  return o;
}

// Runs the case's decoder on `src`; returns the final canvas.
std::vector<int32_t> run_decoder(const GenFunction& fn, const Fixture& fx, const Model& model, const Kwargs& kw,
                                 const std::vector<int32_t>& prompt, const LogitSource& src) {
  if (fn.kind == GenKind::kLladaRef) {
    LladaGenerateOptions o;
    o.steps = kw.integer("steps", 128);
    o.gen_length = kw.integer("gen_length", 128);
    o.block_length = kw.integer("block_length", 128);
    o.temperature = kw.number("temperature", 0);
    o.cfg_scale = kw.number("cfg_scale", 0);
    if (!parse_remasking(kw.string("remasking", "low_confidence"), &o.remasking)) fail("kwargs.remasking: unknown");
    o.mask_id = case_mask_id(fx, kw, "mask_id");
    o.logits_eos_inf = kw.boolean("logits_eos_inf", false);
    o.confidence_eos_eot_inf = kw.boolean("confidence_eos_eot_inf", false);
    o.eos_id = model.config.special.eos;
    o.eot_id = model.config.special.eot;
    return llada_generate(src, prompt, o);
  }
  if (fn.kind == GenKind::kFastLlada) {
    FastDllmLladaOptions o;
    o.steps = kw.integer("steps", 128);
    o.gen_length = kw.integer("gen_length", 128);
    o.block_length = kw.integer("block_length", 128);
    o.temperature = kw.number("temperature", 0);
    if (!parse_remasking(kw.string("remasking", "low_confidence"), &o.remasking)) fail("kwargs.remasking: unknown");
    o.mask_id = case_mask_id(fx, kw, "mask_id");
    o.threshold = kw.optional_number("threshold");
    o.factor = kw.optional_number("factor");
    o.cache = fn.cache;
    return fast_dllm_llada_generate(src, prompt, o);
  }
  if (fn.kind == GenKind::kFastDreamBlock) {
    DreamBlockOptions o;
    o.dream = dream_options(fn.kind, fx, kw, prompt);
    // Upstream defaults (diffusion_generate's kwargs.get): block_length 32, dual_cache False.
    o.block_length = kw.integer("block_length", 32);
    o.cache = kw.boolean("dual_cache", false) ? CachePolicy::kDual : CachePolicy::kPrefix;
    return dream_block_generate(src, prompt, o);
  }
  return dream_generate(src, prompt, dream_options(fn.kind, fx, kw, prompt));
}

// A case the reference decided with torch's RNG cannot be replayed: our sampling
// stream differs (docs/decoders.md). Returns the SKIP reason, or "".
std::string stochastic_reason(GenKind kind, const Kwargs& kw) {
  if (kind == GenKind::kLladaRef || kind == GenKind::kFastLlada) {
    if (kw.number("temperature", 0) > 0) return "samples with torch's RNG (temperature > 0)";
    if (kw.string("remasking", "low_confidence") == "random") return "samples with torch's RNG (random remasking)";
    return "";
  }
  // The block version never draws for alg origin (it falls through to negative entropy).
  if (kind != GenKind::kFastDreamBlock && kw.string("alg", "origin") == "origin")
    return "samples with torch's RNG (alg origin)";
  if (kw.number("temperature", 1.0) > 0) return "samples with torch's RNG (temperature > 0)";
  if (kw.number("alg_temp", 0) > 0) return "samples with torch's RNG (alg_temp > 0)";
  return "";
}

std::vector<std::vector<int64_t>> drop_consecutive_duplicates(std::vector<std::vector<int64_t>> rows) {
  std::vector<std::vector<int64_t>> out;
  for (auto& r : rows)
    if (out.empty() || out.back() != r) out.push_back(std::move(r));
  return out;
}


// The manifest's n_model_calls and model_input_shapes ([batch, rows] per call), when it
// has them: the number of calls and how many rows each one recomputed (a cached call
// feeds only its window) are part of the reference's behaviour.
void compare_calls(const json& g, const std::vector<std::pair<int64_t, int64_t>>& shapes) {
  if (g.contains("n_model_calls")) {
    if (!g["n_model_calls"].is_number_integer()) fail("n_model_calls: expected an integer");
    if (g["n_model_calls"].get<int64_t>() != int64_t(shapes.size()))
      fail(std::to_string(shapes.size()) + " model calls, manifest n_model_calls is " + g["n_model_calls"].dump());
  }
  if (!g.contains("model_input_shapes")) return;
  const json& want = g["model_input_shapes"];
  if (!want.is_array() || want.size() != shapes.size())
    fail("model_input_shapes: manifest lists " + (want.is_array() ? std::to_string(want.size()) : want.dump()) +
         " calls, the decoder made " + std::to_string(shapes.size()));
  for (size_t c = 0; c < shapes.size(); ++c) {
    const json& w = want[c];
    if (!w.is_array() || w.size() != 2 || !w[0].is_number_integer() || !w[1].is_number_integer())
      fail("model_input_shapes[" + std::to_string(c) + "]: expected [batch, length], got " + w.dump());
    if (w[0].get<int64_t>() != shapes[c].first || w[1].get<int64_t>() != shapes[c].second)
      fail("call " + std::to_string(c) + " input shape [" + std::to_string(shapes[c].first) + ", " +
           std::to_string(shapes[c].second) + "], manifest model_input_shapes says " + w.dump());
  }
}

// Returns a SKIP reason, or "" after the case passed (failures throw).
std::string generate_case(Fixture& fx, const std::string& name, const json& g) {
  if (!g.is_object()) fail("manifest entry is not an object");
  if (!g.contains("function") || !g["function"].is_string()) fail("no function");
  const std::string function = g["function"];
  if (std::optional<std::string> r = block_family_case(fx, g, function)) return *r;
  const GenFunction fn = classify(function);
  const GenKind kind = fn.kind;
  if (kind == GenKind::kUnknown) fail("unsupported function '" + function + "'");
  const json kwargs_json = g.contains("kwargs") ? g["kwargs"] : json::object();
  std::vector<std::string> known;
  if (kind == GenKind::kLladaRef)
    known = {"steps", "gen_length", "block_length", "temperature", "cfg_scale", "remasking", "mask_id",
             "logits_eos_inf", "confidence_eos_eot_inf", "attention_mask"};
  else if (kind == GenKind::kFastLlada)
    known = {"steps", "gen_length", "block_length", "temperature", "remasking", "mask_id", "threshold", "factor"};
  else
    known = {"max_new_tokens", "max_length", "steps", "eps", "temperature", "top_p", "top_k", "alg", "alg_temp",
             "mask_token_id", "threshold", "output_history", "return_dict_in_generate"};
  if (kind == GenKind::kFastDreamBlock) known.insert(known.end(), {"block_length", "dual_cache"});
  json effective = kwargs_json;
  // Dream: the manifest's effective_top_k / effective_top_p (null = none) describe what
  // the reference actually applied, including inherited defaults.
  if (is_dream(kind)) {
    if (g.contains("effective_top_k")) effective["top_k"] = g["effective_top_k"];
    if (g.contains("effective_top_p")) effective["top_p"] = g["effective_top_p"];
  }
  const Kwargs kw(effective, known);
  if (std::string why = stochastic_reason(kind, kw); !why.empty()) return why;
  const std::vector<int32_t> prompt = case_prompt(fx, g);
  if (!g.contains("states_file") || !g["states_file"].is_string()) fail("no states_file");
  const std::string states_rel = g["states_file"];
  const NpyArray states = load_fixture_npy(fx, states_rel);
  if (states.shape.size() != 2) fail(states_rel + ": expected 2-D [rows, length], got " + states.shape_string());
  const std::vector<int64_t> flat = states.to_i64();
  std::vector<std::vector<int64_t>> want;
  for (int64_t r = 0; r < states.shape[0]; ++r)
    want.emplace_back(flat.begin() + r * states.shape[1], flat.begin() + (r + 1) * states.shape[1]);

  const Model& model = fixture_model(fx, weights_file(fx, false));
  // Record the canvas the model sees at every call (the cond canvas under CFG; the
  // whole canvas also when a cached call feeds only a window of it) and the call's
  // input shape [batch, query rows] as the manifest's model_input_shapes has it.
  std::vector<std::vector<int64_t>> got;
  std::vector<std::pair<int64_t, int64_t>> shapes;
  // Trajectories run the forward at reference precision: the fixtures certify each
  // trajectory under a float64 model, and some hinge on gaps below f32 rounding noise
  // (forward logits are checked separately on the fast path).
  const LogitSource inner = model_logit_source(model, LogitSourceOptions{.reference_precision = true});
  LogitSource src = inner;
  src.score = [&](const std::vector<std::vector<int32_t>>& canvases, const std::vector<int32_t>& slots,
                  std::vector<float>& out) {
    got.emplace_back(canvases.at(0).begin(), canvases.at(0).end());
    shapes.emplace_back(int64_t(canvases.size()), int64_t(canvases.at(0).size()));
    inner.score(canvases, slots, out);
  };
  src.score_cached = [&](const std::vector<int32_t>& canvas, const CachedQuery& query, std::vector<float>& out) {
    got.emplace_back(canvas.begin(), canvas.end());
    shapes.emplace_back(1, int64_t(query.query_end - query.query_begin));
    inner.score_cached(canvas, query, out);
  };
  std::vector<int32_t> final_canvas;
  try {
    final_canvas = run_decoder(fn, fx, model, kw, prompt, src);
  } catch (const Error& e) {
    fail(std::string("decoder: ") + e.what());
  }
  got.emplace_back(final_canvas.begin(), final_canvas.end());
  const bool dedupe = function.find("prefix_cache") != std::string::npos || function.find("dual_cache") != std::string::npos;
  compare_states(dedupe ? drop_consecutive_duplicates(got) : got, dedupe ? drop_consecutive_duplicates(want) : want);
  compare_calls(g, shapes);
  if (g.contains("final_ids")) {
    if (!g["final_ids"].is_array()) fail("final_ids: expected a list");
    std::vector<int64_t> ids;
    for (const auto& v : g["final_ids"]) ids.push_back(v.is_number_integer() ? v.get<int64_t>() : -1);
    if (ids.size() != final_canvas.size())
      fail("final_ids: " + std::to_string(final_canvas.size()) + " ids, want " + std::to_string(ids.size()));
    for (size_t s = 0; s < ids.size(); ++s)
      if (ids[s] != final_canvas[s])
        fail("final_ids slot " + std::to_string(s) + ": got " + std::to_string(final_canvas[s]) + " want " +
             std::to_string(ids[s]));
  }
  return "";
}

// Runs one case body, turning every error into a FAIL line (never a crash).
template <typename Body>
void run_case(ConformCounts& counts, const std::string& name, Body body) {
  try {
    std::string skip = body();
    if (skip.empty()) counts.pass(name);
    else counts.skip(name, skip);
  } catch (const std::exception& e) {
    counts.fail(name, e.what());
  }
}

void conform_model_dir(const std::string& dir, ConformCounts& counts) {
  Fixture fx = open_fixture(dir);
  const json& m = fx.manifest;
  if (!m.contains("forward") && !m.contains("generate"))
    throw Error((fx.dir / "manifest.json").string() + ": lists no \"forward\" or \"generate\" cases");
  if (m.contains("forward")) {
    if (!m["forward"].is_object()) throw Error((fx.dir / "manifest.json").string() + ": \"forward\" is not an object");
    for (const auto& [name, entry] : m["forward"].items())
      run_case(counts, "forward/" + name, [&, n = name, e = entry] {
        forward_case(fx, n, e);
        return std::string();
      });
  }
  if (m.contains("generate")) {
    if (!m["generate"].is_object()) throw Error((fx.dir / "manifest.json").string() + ": \"generate\" is not an object");
    for (const auto& [name, entry] : m["generate"].items())
      run_case(counts, "generate/" + name, [&, n = name, e = entry] { return generate_case(fx, n, e); });
  }
}

}  // namespace

void register_conform(CLI::App& app) {
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("conform", "Check the engine against reference fixture directories");
  cmd->add_option("dirs", *dirs, "Fixture directories (model fixtures with manifest.json, or tokenizer fixtures)")
      ->required();
  add_device_option(cmd);
  cmd->callback([dirs] {
    ConformCounts counts;
    for (const std::string& dir : *dirs) {
      if (is_tokenizer_fixture_dir(dir)) run_tokenizer_conform(dir, counts);
      else conform_model_dir(dir, counts);
    }
    std::printf("%d passed, %d failed, %d skipped\n", counts.passed, counts.failed, counts.skipped);
    std::fflush(stdout);
    if (counts.failed > 0) exit_code() = 1;
  });
}

}  // namespace unmask::cli
