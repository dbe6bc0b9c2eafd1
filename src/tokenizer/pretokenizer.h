// tokenizer/pretokenizer.h — the `pre_tokenizer` section of tokenizer.json.
//
// A PreTokenizer owns its steps (Sequence flattened) and compiled regexes; it is
// immutable and thread-safe. Splitting borrows the input text: the pieces it
// returns are views into that text or into strings kept in Pieces::arena.
#pragma once
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace unmask::tok {

struct Pieces {
  std::vector<std::string_view> items;
  std::deque<std::string> arena;  // strings created while splitting (stable addresses)
  std::string_view keep(std::string s) {
    arena.push_back(std::move(s));
    return arena.back();
  }
  void clear() {
    items.clear();
    arena.clear();
  }
};

class PreTokenizer {
 public:
  // Returns nullptr for JSON null. Throws Error naming `label` for unknown types,
  // bad regexes and unsupported options.
  static std::unique_ptr<PreTokenizer> create(const nlohmann::json& cfg, const std::string& label);
  ~PreTokenizer();

  // Splits valid UTF-8 `text` into out.items (cleared first). `section_index` is the
  // index of the text's section between added tokens (Metaspace "first" scheme).
  void split(std::string_view text, int section_index, Pieces& out) const;

  // True when the last step is ByteLevel: pieces are then raw text and the model maps
  // their bytes to the byte-level alphabet itself (saves building mapped strings).
  bool byte_level_output() const { return defer_byte_map_; }

  struct Step;

 private:
  PreTokenizer();
  void add(const nlohmann::json& cfg, const std::string& label);
  std::vector<std::unique_ptr<Step>> steps_;
  bool defer_byte_map_ = false;
};

// The white space set of JavaScript regexes (\s), as a PCRE2 class body.
extern const char* const kJsSpaceClassBody;

}  // namespace unmask::tok
