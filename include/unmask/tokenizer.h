// unmask/tokenizer.h — text <-> token ids from a model folder's own tokenizer files.
//
// Tokenizer owns everything it loads from `tokenizer.json` (byte-level BPE: vocab,
// merges, added tokens, normalizer, pre-tokenizer, post-processor, decoder) and
// `tokenizer_config.json` (special-token roles, chat template, decode clean-up).
// It is immutable once loaded: copies share the loaded data and every method is
// safe to call from several threads at once. Semantics follow the transformers.js
// reference the conformance fixtures were generated with (docs/tokenizer.md).
//
// StreamDecoder borrows a Tokenizer (which must outlive it) and owns only the
// bytes / text it holds back between calls.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unmask {

struct EncodeOptions {
  // Recognise special-token text (e.g. "<|im_end|>") as that token. Off by default:
  // user-supplied text must not be able to forge control tokens. Turn it on for
  // rendered chat templates and for conformance with the reference.
  bool parse_special = false;
  // Apply the post-processor (e.g. a TemplateProcessing BOS). Rendered chat
  // templates already contain their special tokens: encode them with false.
  bool add_special_tokens = true;
};

struct DecodeOptions {
  bool skip_special = false;  // drop special tokens (and additional_special_tokens)
  // transformers' clean_up_tokenization_spaces; unset: tokenizer_config.json's value
  // (default true when the file does not say, as the reference does).
  std::optional<bool> clean_up_spaces;
};

// Roles of special tokens. bos/eos/pad/unk/sep/cls/mask come from
// tokenizer_config.json (`<role>_token`; pad falls back to eos). When the config
// names no mask token, the first special added token spelled like a known mask
// token (<|mdm_mask|>, <|mask|>, <mask>, [MASK], <MASK>, |<MASK>|) is used. eot
// (end of turn) is `eot_token` if given, else the first special added token among
// <|eot_id|>, <|im_end|>, <|role_end|>, <|end|>, <end_of_turn>, <|eot|>, else eos.
enum class TokenRole { kBos, kEos, kPad, kUnk, kSep, kCls, kMask, kEot };

class Tokenizer {
 public:
  // Loads `dir`/tokenizer.json and, when present, `dir`/tokenizer_config.json.
  // Throws Error naming the file and field on any problem.
  static Tokenizer from_dir(const std::string& dir);
  // `config_path` may be empty (no tokenizer_config.json).
  static Tokenizer from_files(const std::string& tokenizer_json_path, const std::string& config_path);
  // From JSON text in memory (tests, fuzzing). `label` names the source in errors.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json,
                             const std::string& label = "tokenizer.json");

  // Invalid UTF-8 in `text` is replaced by U+FFFD (one per maximal ill-formed
  // subsequence) before tokenization, as a UTF-8 decoder with errors="replace" does.
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Encodes a rendered chat template: special tokens are recognised everywhere except
  // inside the `untrusted` byte ranges (text that came from the conversation); no
  // post-processor is applied (the template wrote its own BOS / role tokens).
  std::vector<int32_t> encode_rendered(std::string_view text,
                                       std::span<const std::pair<size_t, size_t>> untrusted) const;
  // Throws Error for ids outside [0, vocab_size()) or ids with no token.
  std::string decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The vocabulary string of `id` (byte-level spelling, e.g. "Ġworld"). Throws on bad ids.
  std::string id_to_token(int32_t id) const;
  // Bytes the id stands for when decoded (raw text for added tokens). Throws on bad ids.
  std::string token_bytes(int32_t id) const;
  std::optional<int32_t> special_id(TokenRole role) const;
  std::optional<std::string> special_token(TokenRole role) const;
  // True for special added tokens and additional_special_tokens (what skip_special drops).
  bool is_special(int32_t id) const;
  // Size of the id space: highest id + 1 (vocabulary plus added tokens).
  int32_t vocab_size() const;

  // The chat template of tokenizer_config.json ("" when the model has none). When the
  // config holds a list of named templates, the one named "default".
  const std::string& chat_template() const;
  // Special-token strings the chat template may use (bos_token, eos_token, ...), by name.
  std::vector<std::pair<std::string, std::string>> template_special_tokens() const;
  // Where the tokenizer was loaded from (for messages).
  const std::string& source() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
  friend class StreamDecoder;
};

// Incremental detokenization for streaming: push ids as they become final (in order)
// and get back only text that can no longer change — never a partial UTF-8 character.
// The concatenation of every push() result and finish() equals
// tokenizer.decode(all ids, options).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, const DecodeOptions& options = {});
  ~StreamDecoder();
  StreamDecoder(StreamDecoder&&) noexcept;
  StreamDecoder& operator=(StreamDecoder&&) noexcept;

  std::string push(int32_t id);
  std::string push(std::span<const int32_t> ids);
  // Flushes what is held back (an incomplete UTF-8 tail becomes U+FFFD).
  std::string finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace unmask
