// Fixture access and comparisons shared by the `unmask conform` case runners.
#include "conform_fixture.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "unmask/error.h"

namespace unmask::cli::conform {

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

}  // namespace unmask::cli::conform
