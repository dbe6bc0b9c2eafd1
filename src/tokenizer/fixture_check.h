// tokenizer/fixture_check.h — checking tokenizer conformance fixtures
// (encodings.jsonl lines: text, ids, ids_add_special_tokens, tokens, decoded,
// decoded_skip_special). Shared by `unmask conform` and the unit tests.
// Owns nothing beyond the call: each fixture's tokenizer is loaded and dropped.
#pragma once
#include <functional>
#include <string>

namespace unmask::tok {

struct FixtureResult {
  std::string name;     // "<fixture>:<line>"
  bool passed = false;
  bool skipped = false;
  std::string message;  // why it failed / was skipped
};

// A fixture dir holds encodings.jsonl; a fixture set holds manifest.json listing
// "tokenizers" (each a sub-directory).
bool is_tokenizer_fixture_dir(const std::string& dir);
// Reports every line of every fixture under `dir`. A fixture whose tokenizer cannot
// be found or loaded is reported as one failed result.
void check_tokenizer_fixtures(const std::string& dir, const std::function<void(const FixtureResult&)>& report);

}  // namespace unmask::tok
