// `unmask conform DIR...`: checks the engine against a fixture directory in the format
// of shared/fixtures (README there). manifest.json is authoritative: exactly the cases
// it lists under "forward" and "generate" run, and everything (files, prompt, kwargs,
// ids) comes from the manifest and the model files — never from case names.
// One line per case (PASS / FAIL <what differs> / SKIP <why>), then the totals;
// exit code 1 when anything failed. A case with missing or malformed files FAILs.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "commands.h"
#include "conform_common.h"
#include "unmask/decode.h"
#include "unmask/error.h"
#include "unmask/model.h"
#include "unmask/npy.h"

namespace unmask::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Thrown inside a case: becomes its FAIL line.
struct CaseFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void fail(const std::string& what) { throw CaseFailure(what); }

// f32 logits: the reference's float64 run differs from its float32 run by <= 9e-6
// (manifest max_abs_diff_f32_vs_f64), so an f32 engine with another summation order
// sits well inside 1e-4, while any real defect moves logits (std ~5) by far more.
constexpr double kLogitTolF32 = 1e-4;
// Hidden states (embeddings, each layer's input, final-norm output; magnitudes of a
// few units, below the logits'): same reasoning and the same 1e-4 bound.
constexpr double kHiddenTolF32 = 1e-4;
// bf16 logits: the reference rounds weights AND every activation to bf16 (8-bit
// mantissa, ~0.4% relative); its f32-vs-bf16 gap is ~0.2 at logit std ~5 (~4% of
// std). An engine with bf16 weights but another rounding path (f32 accumulation, f32
// activations, other kernel order) differs from that reference by at most the same
// order, so we allow 10% of the reference logits' std (~0.5 here, 2x the observed
// gap); a wrong weight, norm or RoPE shifts logits by about one std.
constexpr double kBf16TolOfStd = 0.10;
// Argmax agreement: the reference's bf16 logits are themselves rounded to bf16 (steps
// of 1/16 at |logit| ~ 8..16), so exact top-1 ties are common there and its argmax is
// then decided by tie order. A row agrees when the reference's logit at our argmax is
// within two bf16 steps of its maximum; at least 90% of rows must agree (a row whose
// top-2 gap is below our rounding difference may still flip legitimately).
constexpr double kBf16ArgmaxAgreement = 0.90;
constexpr int kBf16ArgmaxSteps = 2;

struct Fixture {
  fs::path dir;
  json manifest;
  json config;                     // config.json (for mask_token_id)
  std::map<std::string, json> files;  // manifest["files"] keyed by path inside the fixture dir
  std::map<std::string, std::unique_ptr<Model>> models;  // by weights file
  std::map<std::string, std::string> model_errors;
};

json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw Error(p.string() + ": cannot open");
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    throw Error(p.string() + ": invalid JSON: " + e.what());
  }
}

// Manifest paths carry the fixture dir's name ("llada-tiny/forward/x.npy"); the dir
// may have been copied or renamed, so the first component is dropped.
std::string strip_first_component(const std::string& p) {
  const size_t slash = p.find('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

Fixture open_fixture(const std::string& dir) {
  Fixture fx;
  fx.dir = fs::path(dir);
  std::error_code ec;
  if (!fs::is_directory(fx.dir, ec)) throw Error(dir + ": not a directory");
  fx.manifest = read_json(fx.dir / "manifest.json");
  if (!fx.manifest.is_object()) throw Error((fx.dir / "manifest.json").string() + ": expected a JSON object");
  if (fs::exists(fx.dir / "config.json")) fx.config = read_json(fx.dir / "config.json");
  if (fx.manifest.contains("files") && fx.manifest["files"].is_object())
    for (const auto& [key, entry] : fx.manifest["files"].items()) fx.files[strip_first_component(key)] = entry;
  return fx;
}

bool listed_or_present(const Fixture& fx, const std::string& rel) {
  return fx.files.count(rel) || fs::exists(fx.dir / rel);
}

// Loads fixture file `rel`, checking it against its manifest entry (shape, dtype).
NpyArray load_fixture_npy(const Fixture& fx, const std::string& rel) {
  const fs::path path = fx.dir / rel;
  if (!fs::exists(path)) fail(rel + ": missing");
  NpyArray a;
  try {
    a = read_npy(path.string());
  } catch (const Error& e) {
    fail(e.what());
  }
  auto it = fx.files.find(rel);
  if (it != fx.files.end() && it->second.is_object()) {
    const json& e = it->second;
    if (e.contains("shape") && e["shape"].is_array()) {
      std::vector<int64_t> shape;
      for (const auto& d : e["shape"]) shape.push_back(d.is_number_integer() ? d.get<int64_t>() : -1);
      if (shape != a.shape) fail(rel + ": shape " + a.shape_string() + ", manifest says " + e["shape"].dump());
    }
    if (e.contains("dtype") && e["dtype"].is_string()) {
      const std::string want = e["dtype"];
      const std::string got = a.dtype == NpyDType::kF32 ? "float32" : a.dtype == NpyDType::kI64 ? "int64" : "int32";
      if (want != got) fail(rel + ": dtype " + got + ", manifest says " + want);
    }
  }
  return a;
}

const Model& fixture_model(Fixture& fx, const std::string& weights_file) {
  auto it = fx.models.find(weights_file);
  if (it != fx.models.end()) return *it->second;
  auto err = fx.model_errors.find(weights_file);
  if (err != fx.model_errors.end()) fail(err->second);
  try {
    auto m = load_model(fx.dir.string(), LoadOptions{.weights_file = weights_file});
    return *(fx.models[weights_file] = std::move(m));
  } catch (const std::exception& e) {
    fx.model_errors[weights_file] = std::string("loading ") + weights_file + ": " + e.what();
    fail(fx.model_errors[weights_file]);
  }
}

// Weight files from manifest["weights"] (keys are file names): the bf16 one has
// "bf16" in its name; defaults are the fixture format's names.
std::string weights_file(const Fixture& fx, bool bf16) {
  std::string pick = bf16 ? "model-bf16.safetensors" : "model.safetensors";
  if (fx.manifest.contains("weights") && fx.manifest["weights"].is_object())
    for (const auto& [k, v] : fx.manifest["weights"].items())
      if (k.size() > 12 && k.ends_with(".safetensors") && (k.find("bf16") != std::string::npos) == bf16) pick = k;
  return pick;
}

std::vector<int32_t> to_ids(const std::vector<int64_t>& v, const std::string& what) {
  std::vector<int32_t> out;
  for (int64_t x : v) {
    if (x < INT32_MIN || x > INT32_MAX) fail(what + ": id " + std::to_string(x) + " out of range");
    out.push_back(int32_t(x));
  }
  return out;
}

// ---- forward cases ---------------------------------------------------------------

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Max |got - want| with its position; FAILs when it exceeds `tol`.
void compare_close(const std::vector<float>& got, const std::vector<float>& want, int64_t cols, double tol,
                   const std::string& what) {
  if (got.size() != want.size())
    fail(what + ": engine gave " + std::to_string(got.size()) + " values, reference has " + std::to_string(want.size()));
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(double(got[i]) - double(want[i]));
    if (!(d <= worst)) {  // also catches NaN
      worst = std::isnan(d) ? INFINITY : d;
      at = i;
    }
  }
  if (worst > tol)
    fail(what + " row " + std::to_string(int64_t(at) / cols) + " col " + std::to_string(int64_t(at) % cols) + ": got " +
         fmt(got[at]) + " want " + fmt(want[at]) + " (|diff| " + fmt(worst) + " > " + fmt(tol) + ")");
}

double stddev(const std::vector<float>& v) {
  double s = 0, s2 = 0;
  for (float x : v) s += x, s2 += double(x) * x;
  const double n = double(v.size()), mean = s / n;
  return std::sqrt(std::max(0.0, s2 / n - mean * mean));
}

ForwardOutput run_forward(const Model& m, const std::vector<int32_t>& ids, bool hidden) {
  ForwardBatch b;
  b.tokens = ids;
  for (int32_t i = 0; i < int32_t(ids.size()); ++i) {
    b.positions.push_back(i);
    b.logit_rows.push_back(i);
  }
  b.capture_hidden = hidden;
  ForwardOutput out;
  forward(m, b, &out);
  return out;
}

void forward_case(Fixture& fx, const std::string& name) {
  const std::string base = "forward/" + name;
  const std::vector<int32_t> ids = to_ids(load_fixture_npy(fx, base + ".input_ids.npy").to_i64(), base + ".input_ids.npy");
  const int64_t L = int64_t(ids.size());
  const NpyArray want32 = load_fixture_npy(fx, base + ".logits.f32.npy");
  const std::string hidden_rel = base + ".hidden.f32.npy", bf16_rel = base + ".logits.bf16.npy";
  const bool check_hidden = listed_or_present(fx, hidden_rel), check_bf16 = listed_or_present(fx, bf16_rel);
  const std::vector<float> ref32 = want32.to_f32();

  const Model& m32 = fixture_model(fx, weights_file(fx, false));
  const ModelConfig& c = m32.config;
  if (want32.shape != std::vector<int64_t>{L, c.vocab})
    fail(base + ".logits.f32.npy: shape " + want32.shape_string() + ", expected [" + std::to_string(L) + ", " +
         std::to_string(c.vocab) + "]");
  ForwardOutput out = run_forward(m32, ids, check_hidden);
  compare_close(out.logits, ref32, c.vocab, kLogitTolF32, "logits.f32");
  if (check_hidden) {
    const NpyArray h = load_fixture_npy(fx, hidden_rel);
    if (h.shape != std::vector<int64_t>{c.n_layers + 1, L, c.hidden})
      fail(hidden_rel + ": shape " + h.shape_string() + ", expected [n_layers+1, L, hidden]");
    // Row index r of the flat [(n_layers+1)*L, hidden] view: entry r / L, position r % L.
    compare_close(out.hidden, h.to_f32(), c.hidden, kHiddenTolF32, "hidden.f32 (entry*L+pos)");
  }
  if (check_bf16) {
    const std::vector<float> ref16 = load_fixture_npy(fx, bf16_rel).to_f32();
    const Model& m16 = fixture_model(fx, weights_file(fx, true));
    if (m16.weight_dtype != DType::BF16) fail(weights_file(fx, true) + ": weights are not bf16");
    ForwardOutput o16 = run_forward(m16, ids, false);
    compare_close(o16.logits, ref16, c.vocab, kBf16TolOfStd * stddev(ref32), "logits.bf16");
    int64_t agree = 0;
    for (int64_t r = 0; r < L; ++r) {
      const float* g = o16.logits.data() + r * c.vocab;
      const float* w = ref16.data() + r * c.vocab;
      const float top = *std::max_element(w, w + c.vocab);
      const double bf16_step = std::ldexp(1.0, std::ilogb(top) - 7);  // one unit in bf16's last place
      agree += w[std::max_element(g, g + c.vocab) - g] >= top - kBf16ArgmaxSteps * bf16_step;
    }
    if (double(agree) < kBf16ArgmaxAgreement * double(L))
      fail("logits.bf16: argmax agrees on " + std::to_string(agree) + " of " + std::to_string(L) + " rows (need " +
           fmt(kBf16ArgmaxAgreement * 100) + "%)");
  }
}

// ---- generation cases ----------------------------------------------------------------

// Typed access to a case's kwargs, refusing keys no handler knows.
class Kwargs {
 public:
  Kwargs(const json& j, std::vector<std::string> known) : j_(j) {
    if (!j_.is_object()) fail("kwargs: expected an object");
    for (const auto& [k, v] : j_.items())
      if (std::find(known.begin(), known.end(), k) == known.end()) fail("kwargs." + k + ": not supported by this function");
  }
  bool has(const std::string& k) const { return j_.contains(k); }
  bool is_null(const std::string& k) const { return j_.contains(k) && j_[k].is_null(); }
  int integer(const std::string& k, int def) const {
    if (!has(k)) return def;
    if (!j_[k].is_number_integer()) fail("kwargs." + k + ": expected an integer, got " + j_[k].dump());
    return j_[k].get<int>();
  }
  double number(const std::string& k, double def) const {
    if (!has(k) || j_[k].is_null()) return def;
    if (!j_[k].is_number()) fail("kwargs." + k + ": expected a number, got " + j_[k].dump());
    return j_[k].get<double>();
  }
  std::optional<double> optional_number(const std::string& k) const {
    if (!has(k) || j_[k].is_null()) return std::nullopt;
    return number(k, 0);
  }
  bool boolean(const std::string& k, bool def) const {
    if (!has(k)) return def;
    if (!j_[k].is_boolean()) fail("kwargs." + k + ": expected true/false, got " + j_[k].dump());
    return j_[k].get<bool>();
  }
  std::string string(const std::string& k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j_[k].is_string()) fail("kwargs." + k + ": expected a string, got " + j_[k].dump());
    return j_[k].get<std::string>();
  }

 private:
  const json& j_;
};

// "prompts.json:<key>" -> that entry's ids; an inline id list is accepted too.
std::vector<int32_t> case_prompt(const Fixture& fx, const json& g) {
  if (!g.contains("prompt")) fail("no prompt");
  const json& p = g["prompt"];
  std::vector<int64_t> ids;
  if (p.is_array()) {
    for (const auto& v : p) ids.push_back(v.is_number_integer() ? v.get<int64_t>() : -1);
  } else if (p.is_string()) {
    const std::string ref = p;
    const size_t colon = ref.find(':');
    if (colon == std::string::npos) fail("prompt '" + ref + "': expected FILE:KEY");
    const std::string file = ref.substr(0, colon), key = ref.substr(colon + 1);
    json prompts;
    try {
      prompts = read_json(fx.dir / file);
    } catch (const Error& e) {
      fail(e.what());
    }
    if (!prompts.contains(key) || !prompts[key].contains("ids") || !prompts[key]["ids"].is_array())
      fail(file + ": no ids for prompt '" + key + "'");
    for (const auto& v : prompts[key]["ids"]) ids.push_back(v.is_number_integer() ? v.get<int64_t>() : -1);
  } else {
    fail("prompt: expected \"FILE:KEY\" or a list of ids");
  }
  std::vector<int32_t> out = to_ids(ids, "prompt");
  if (g.contains("prompt_len") && g["prompt_len"].is_number_integer() && g["prompt_len"].get<size_t>() != out.size())
    fail("prompt has " + std::to_string(out.size()) + " ids, manifest prompt_len is " + g["prompt_len"].dump());
  return out;
}

// The mask id: the kwarg if given, else config.json mask_token_id.
int32_t case_mask_id(const Fixture& fx, const Kwargs& kw, const std::string& key) {
  if (kw.has(key)) return kw.integer(key, -1);
  if (fx.config.contains("mask_token_id") && fx.config["mask_token_id"].is_number_integer())
    return fx.config["mask_token_id"].get<int32_t>();
  fail("no mask id: neither kwargs." + key + " nor config.json mask_token_id");
}

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

void compare_states(const std::vector<std::vector<int64_t>>& got, const std::vector<std::vector<int64_t>>& want) {
  for (size_t r = 0; r < got.size() && r < want.size(); ++r) {
    if (got[r].size() != want[r].size())
      fail("row " + std::to_string(r) + ": " + std::to_string(got[r].size()) + " slots, want " +
           std::to_string(want[r].size()));
    for (size_t s = 0; s < got[r].size(); ++s)
      if (got[r][s] != want[r][s])
        fail("row " + std::to_string(r) + " slot " + std::to_string(s) + ": got " + std::to_string(got[r][s]) +
             " want " + std::to_string(want[r][s]));
  }
  if (got.size() != want.size())
    fail(std::to_string(got.size()) + " state rows, want " + std::to_string(want.size()) + " (the first " +
         std::to_string(std::min(got.size(), want.size())) + " agree)");
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
      run_case(counts, "forward/" + name, [&, n = name] {
        forward_case(fx, n);
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
