// tokenizer/normalizer.h — the `normalizer` section of tokenizer.json.
//
// A Normalizer owns its steps (a Sequence is flattened). It is immutable after
// construction and safe to share between threads. Input must be valid UTF-8.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace unmask::tok {

class Regex;

class Normalizer {
 public:
  // Returns nullptr for a JSON null. Throws Error naming `label` and the type for
  // unknown or unsupported normalizer types.
  static std::unique_ptr<Normalizer> create(const nlohmann::json& cfg, const std::string& label);
  ~Normalizer();

  std::string normalize(std::string_view text) const;

  struct Step;

 private:
  Normalizer();
  void add(const nlohmann::json& cfg, const std::string& label);
  std::vector<std::unique_ptr<Step>> steps_;
};

// JavaScript-style lower-casing of valid UTF-8 (simple case mapping, C.UTF-8 tables).
std::string to_lower_utf8(std::string_view s);
std::string to_upper_utf8(std::string_view s);
// Removes every combining mark (\p{M}).
std::string strip_marks(std::string_view s);

}  // namespace unmask::tok
