// tokenizer/json_load.h — reading tokenizer.json quickly.
//
// A 150k-entry tokenizer.json is ~11 MB; a general DOM costs most of the load
// budget, so a purpose-built parser writes model.vocab and model.merges straight
// into flat string pools and builds an nlohmann::json only for the small rest.
// TokenizerFile owns everything it returns.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace unmask::tok {

// Many short strings in one buffer: string i is chars[offsets[i], offsets[i+1]).
struct StringPool {
  std::string chars;
  std::vector<uint32_t> offsets{0};
  size_t size() const { return offsets.size() - 1; }
  std::string_view get(size_t i) const { return std::string_view(chars).substr(offsets[i], offsets[i + 1] - offsets[i]); }
  void push(std::string_view s) {
    chars.append(s);
    offsets.push_back(static_cast<uint32_t>(chars.size()));
  }
};

struct TokenizerFile {
  nlohmann::json doc;  // the whole file except model.vocab and model.merges
  bool has_vocab = false;
  bool vocab_is_list = false;  // Unigram-style [[piece, score], ...] (not loaded)
  StringPool vocab_tokens;
  std::vector<int32_t> vocab_ids;  // parallel to vocab_tokens
  StringPool merge_left, merge_right;
};

// Reads and parses `path`. Throws Error naming the file and the offending field.
TokenizerFile load_tokenizer_file(const std::string& path);
// Same from memory; `label` names the source in errors.
TokenizerFile parse_tokenizer_json(std::string_view text, const std::string& label);

// Whole-file read helper shared by the tokenizer loaders.
std::string read_text_file(const std::string& path);

}  // namespace unmask::tok
