// tools/unmask/conform_fixture.h — what the `unmask conform` case runners share: the
// fixture folder (manifest, files, models loaded on demand), typed kwargs, comparisons.
// A case FAILs by throwing CaseFailure (fail()); run_case turns it into its line.
// Fixture owns its loaded models; everything else borrows.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "unmask/model.h"
#include "unmask/npy.h"

namespace unmask::cli::conform {

namespace fs = std::filesystem;
using nlohmann::json;

// Thrown inside a case: becomes its FAIL line.
struct CaseFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] inline void fail(const std::string& what) { throw CaseFailure(what); }

struct Fixture {
  fs::path dir;
  json manifest;
  json config;                     // config.json (for mask_token_id)
  std::map<std::string, json> files;  // manifest["files"] keyed by path inside the fixture dir
  std::map<std::string, std::unique_ptr<Model>> models;  // by weights file
  std::map<std::string, std::string> model_errors;
};

json read_json(const fs::path& p);
Fixture open_fixture(const std::string& dir);
bool listed_or_present(const Fixture& fx, const std::string& rel);
// Loads fixture file `rel`, checking it against its manifest entry (shape, dtype).
NpyArray load_fixture_npy(const Fixture& fx, const std::string& rel);
const Model& fixture_model(Fixture& fx, const std::string& weights_file);
// Weight files from manifest["weights"]: the bf16 one has "bf16" in its name.
std::string weights_file(const Fixture& fx, bool bf16);
std::vector<int32_t> to_ids(const std::vector<int64_t>& v, const std::string& what);
std::string fmt(double v);
// Max |got - want| with its position; FAILs when it exceeds `tol`.
void compare_close(const std::vector<float>& got, const std::vector<float>& want, int64_t cols, double tol,
                   const std::string& what);
double stddev(const std::vector<float>& v);
// Row by row, slot by slot; then the row counts.
void compare_states(const std::vector<std::vector<int64_t>>& got, const std::vector<std::vector<int64_t>>& want);

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
std::vector<int32_t> case_prompt(const Fixture& fx, const json& g);
// The mask id: the kwarg if given, else config.json mask_token_id.
int32_t case_mask_id(const Fixture& fx, const Kwargs& kw, const std::string& key);

// conform_forward.cpp: one manifest "forward" entry.
void forward_case(Fixture& fx, const std::string& name, const json& entry);
// conform_block.cpp: generate entries of the block-causal families (LLaDA2, SDAR,
// Fast-dLLM v2). Returns nullopt when `function` is not one of theirs, else the SKIP
// reason or "" after the case passed.
std::optional<std::string> block_family_case(Fixture& fx, const json& g, const std::string& function);

}  // namespace unmask::cli::conform
