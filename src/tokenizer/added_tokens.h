// tokenizer/added_tokens.h — `added_tokens` of tokenizer.json: matching them in text.
//
// AddedVocabulary owns the added-token list and byte tries for matching their
// contents; it is immutable after construction. split() borrows the text and
// returns views into it.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace unmask::tok {

class Normalizer;
class Regex;

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false, rstrip = false;
  bool normalized = false;  // matched in normalized text (against normalized content)
  bool single_word = false;
};

// A stretch of text between added tokens (token < 0), or one added token (index
// into AddedVocabulary::tokens()).
struct Section {
  std::string_view text;
  int32_t token = -1;
};

class AddedVocabulary {
 public:
  // Parses the `added_tokens` array; normalized contents are computed with
  // `normalizer` (may be null). Throws Error naming `label` on malformed entries.
  AddedVocabulary(const nlohmann::json& list, const Normalizer* normalizer, const std::string& label);
  ~AddedVocabulary();

  // Splits text at added tokens, leftmost-longest. `normalized_pass` selects the
  // tokens matched after normalization; with parse_special false, special tokens
  // are not recognised (their text stays plain text). lstrip / rstrip trim the
  // white space of the neighbouring plain sections, as the reference does.
  // `untrusted` (sorted byte ranges, may be null): special tokens overlapping them are
  // not recognised there, even with parse_special.
  void split(std::string_view text, bool normalized_pass, bool parse_special, std::vector<Section>& out,
             const std::vector<std::pair<size_t, size_t>>* untrusted = nullptr) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> next;
      int32_t token = -1;
    };
    std::vector<Node> nodes{Node{}};
    std::array<bool, 256> first{};
    void insert(std::string_view s, int32_t token);
  };
  const Trie& trie(bool normalized_pass, bool parse_special) const {
    return tries_[(normalized_pass ? 2 : 0) + (parse_special ? 1 : 0)];
  }
  bool word_char_at(std::string_view text, size_t pos, bool before) const;

  std::vector<AddedToken> tokens_;
  std::array<Trie, 4> tries_;
  std::unique_ptr<Regex> word_char_;  // only when some token is single_word
};

}  // namespace unmask::tok
