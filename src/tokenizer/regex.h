// tokenizer/regex.h — PCRE2 (UTF, Unicode properties, JIT) regexes for tokenizer.json.
//
// A Regex owns its compiled PCRE2 code (and JIT code). Patterns in tokenizer.json
// are Oniguruma syntax (what the Rust `tokenizers` library runs); translate_pattern
// maps the constructs whose meaning differs in PCRE2 to their Oniguruma meaning,
// following the rewrite transformers.js applies, so that both engines agree.
// Matching borrows the subject text and is safe to call from several threads.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace unmask::tok {

// Translation of an Oniguruma pattern to PCRE2 syntax. Throws Error naming `label`
// on constructs it does not support (nested classes, class intersection).
std::string translate_pattern(std::string_view onig, const std::string& label);

class Regex {
 public:
  // `pattern` is PCRE2 syntax already (use translate_pattern for file patterns).
  Regex(const std::string& pattern, const std::string& label);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls on_match(start, end) for each successive non-overlapping match in the
  // valid-UTF-8 text, JavaScript `matchAll` style: after an empty match the search
  // resumes one code point further. Empty matches are reported too.
  void for_each_match(std::string_view text,
                      const std::function<void(size_t, size_t)>& on_match) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::string label_;
  std::unique_ptr<Code> code_;
};

std::string escape_regex_literal(std::string_view s);
// Compiles a tokenizer.json `pattern` object: {"String": literal} or {"Regex": onig}.
std::unique_ptr<Regex> make_pattern_regex(const nlohmann::json& pattern, const std::string& label);

}  // namespace unmask::tok
