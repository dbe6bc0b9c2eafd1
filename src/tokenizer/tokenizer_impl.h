// tokenizer/tokenizer_impl.h — what a loaded unmask::Tokenizer holds (internal).
//
// Tokenizer::Impl owns every component; the public Tokenizer and StreamDecoder share
// it read-only through a shared_ptr<const Impl>.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/tokenizer.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"

namespace unmask {

struct Tokenizer::Impl {
  std::string source;
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::BpeModel> model;
  std::unique_ptr<tok::AddedVocabulary> added;
  std::unique_ptr<tok::Decoder> decoder;

  // Post-processor with special tokens added: ids before / after the sequence.
  std::vector<int32_t> post_prefix, post_suffix;

  // Per id: bit 0 = dropped by skip_special, bit 1 = an added token's content.
  static constexpr uint8_t kSkipSpecial = 1, kAddedContent = 2;
  std::vector<uint8_t> id_flags;

  bool clean_up_spaces = true;
  bool remove_space = false;
  bool lowercase_and_remove_accent = false;

  std::array<std::optional<std::string>, 8> role_token;  // by TokenRole
  std::array<std::optional<int32_t>, 8> role_id;
  std::vector<std::pair<std::string, std::string>> template_specials;
  std::string chat_template;

  bool flag(int32_t id, uint8_t bit) const { return (id_flags[static_cast<size_t>(id)] & bit) != 0; }
  // Throws Error unless id names a token.
  void check_id(int32_t id) const;
};

}  // namespace unmask
