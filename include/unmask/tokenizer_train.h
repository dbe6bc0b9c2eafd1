// unmask/tokenizer_train.h — learning a byte-level BPE tokenizer from text.
//
// train_bpe borrows the texts for the duration of the call and returns a
// BpeVocabulary that owns its tokens and merges; write_bpe_tokenizer writes it as a
// standard Hugging Face `tokenizer.json` + `tokenizer_config.json` that
// Tokenizer::from_dir reads back (docs/default-model.md describes the format).
//
// The algorithm (the plain definition; the implementation counts pairs incrementally):
//   1. Text is split into pieces by the pre-tokenizer regex (kCodePreTokenizerPattern),
//      each piece's bytes become symbols 0..255 (token id = byte value; the vocabulary
//      spells byte b as GPT-2's byte-to-unicode character).
//   2. Repeat: count every adjacent symbol pair over all pieces (weighted by how often
//      the piece occurs); take the most frequent pair, ties broken by the smallest
//      (left id, right id); stop when its count is below min_frequency. Replace its
//      occurrences left to right (non-overlapping) by the merged token. The merged
//      token's id is the next free id, unless its bytes already are a token (two pairs
//      can spell the same bytes): then it reuses that id and only the merge is added.
//   3. Until the vocabulary holds vocab_size - special_tokens.size() tokens.
// Special tokens take the ids after the vocabulary, in the order given.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unmask {

// Pre-tokenizer regex (Oniguruma syntax, as tokenizer.json stores it), chosen for source code:
//   [^\r\n\p{L}\p{N}_]?[\p{L}_][\p{L}\p{N}_]*  identifiers (underscores and digits kept inside,
//                                              one leading space / '.' / '(' joins: " self", ".append")
//   \p{N}{1,3}                                 numbers in groups of up to 3 digits
//    ?[^\s\p{L}\p{N}_]+                        operator / punctuation runs, one leading space joins
//   \s*[\r\n]+[ \t]*                           line breaks together with the next line's indentation
//   \s+(?!\S)|\s+                              other white space
// Unlike GPT-2/GPT-4 splits it has no English contractions ('s, 't would cut string literals)
// and keeps a newline with the indentation that follows, the most frequent piece of Python.
extern const char* const kCodePreTokenizerPattern;

struct BpeTrainProgress {
  int merges_done = 0;
  int merges_target = 0;     // upper bound: vocab_size - 256 - specials
  int64_t best_count = 0;    // frequency of the pair merged last
  std::string last_token;    // bytes of the token made last
};

struct BpeTrainOptions {
  int vocab_size = 4096;      // total id space including the special tokens
  int64_t min_frequency = 2;  // pairs seen fewer times are never merged
  std::string pattern = kCodePreTokenizerPattern;
  // Added special tokens, ids after the learned vocabulary in this order.
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|startoftext|>", "<|mask|>"};
  // Roles written to tokenizer_config.json (each must be one of special_tokens or empty).
  // pad is the end token, as in LLaDA: SFT answers are padded with EOS.
  std::string bos_token = "<|startoftext|>", eos_token = "<|endoftext|>", pad_token = "<|endoftext|>",
              mask_token = "<|mask|>";
  int64_t model_max_length = 4096;
  std::function<void(const BpeTrainProgress&)> on_progress;  // called every ~1% of the merges
};

struct BpeVocabulary {
  std::vector<std::string> tokens;                         // by id: raw bytes of each learned token
  std::vector<std::pair<int32_t, int32_t>> merges;         // in rank order: (left id, right id)
  std::vector<std::string> special_tokens;                 // ids tokens.size() + i
  BpeTrainOptions options;                                 // what it was trained with (pattern, roles)
  int64_t pieces = 0, distinct_pieces = 0, bytes = 0;      // corpus statistics
};

// Learns the vocabulary from `texts` (each is split separately; invalid UTF-8 is
// replaced by U+FFFD as the tokenizer does before encoding). Throws Error on bad options.
BpeVocabulary train_bpe(const std::vector<std::string_view>& texts, const BpeTrainOptions& options);

// Writes `dir`/tokenizer.json and `dir`/tokenizer_config.json (creates `dir`).
void write_bpe_tokenizer(const BpeVocabulary& vocab, const std::string& dir);

}  // namespace unmask
