// tokenizer/decoder.h — the `decoder` section of tokenizer.json, and text clean-up.
//
// A Decoder owns its steps (Sequence flattened); immutable and thread-safe.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace unmask::tok {

struct DecodeToken {
  std::string text;
  bool added = false;  // an added token's content: passed through the byte-level step as is
};

class Decoder {
 public:
  // nullptr for JSON null. Throws Error naming `label` for unknown / unsupported types.
  static std::unique_ptr<Decoder> create(const nlohmann::json& cfg, const std::string& label);
  ~Decoder();

  std::string decode(std::vector<DecodeToken> tokens) const;
  // True when the chain is a single ByteLevel step: the text of a token sequence is
  // then the UTF-8 repair of the concatenated token bytes, with added tokens as
  // boundaries — which lets the streaming decoder work token by token.
  bool is_plain_byte_level() const;

  struct Step;

 private:
  Decoder();
  void add(const nlohmann::json& cfg, const std::string& label);
  std::vector<std::unique_ptr<Step>> steps_;
};

// Appends the raw bytes of one byte-level token (characters outside the byte
// alphabet are kept as their own UTF-8).
void append_byte_level_bytes(std::string_view token, std::string& out);

// transformers' clean_up_tokenization: drops the space before . ? ! , and English
// contractions, in the reference's order.
std::string clean_up_tokenization(std::string text);

}  // namespace unmask::tok
