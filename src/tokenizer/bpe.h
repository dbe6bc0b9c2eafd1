// tokenizer/bpe.h — the BPE `model` of tokenizer.json: vocabulary and merges.
//
// BpeModel owns the id <-> token tables (model vocabulary plus added tokens, which
// join the token map as in the reference) and the merge table. Merging works on
// integer symbols: every vocabulary entry is a symbol whose number is its id;
// strings that appear only in merges (or byte characters missing from the
// vocabulary) get symbol numbers above the vocabulary's id range. Symbols map to
// output ids through sym_out_. After construction and set_added_tokens it is
// immutable; encode() keeps its scratch in a caller's BpeCache.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/json_load.h"
#include "tokenizer/word_cache.h"

namespace unmask::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Per-call memo of piece -> ids (many pieces repeat in running text), plus scratch.
struct BpeCache {
  WordCache words;
  std::vector<int32_t> syms;   // scratch
  std::vector<int32_t> ranks;  // scratch
  std::string text;            // scratch
};

class BpeModel {
 public:
  // Takes the vocabulary and merges out of `file` (moved). Throws Error naming
  // `label` on malformed or unsupported model settings.
  BpeModel(TokenizerFile& file, const nlohmann::json& model_cfg, const std::string& label);
  ~BpeModel();

  // Added tokens join the token map and override id_to_token, as in the reference.
  void set_added_tokens(const std::vector<std::pair<std::string, int32_t>>& added);

  // Appends the ids of one pre-token. `raw_bytes`: the piece is raw text whose bytes
  // still need the byte-level mapping; otherwise it is already in the vocabulary's
  // alphabet (valid UTF-8).
  void encode(std::string_view piece, bool raw_bytes, std::vector<int32_t>& out, BpeCache& cache) const;

  int32_t token_to_id(std::string_view token) const;  // -1 when absent
  // Empty view for ids with no token; ids must be in [0, id_space()).
  std::string_view id_to_token(int32_t id) const;
  bool has_id(int32_t id) const { return id >= 0 && id < id_space_ && assigned_[static_cast<size_t>(id)]; }
  int32_t id_space() const { return id_space_; }
  size_t merge_count() const { return merge_count_; }

 private:
  struct PairTable;
  class SymbolIndex;
  int32_t sym_of(std::string_view s, uint64_t hash, bool create);
  // `ranks` holds the rank of each adjacent pair (kNoRank: none) on entry.
  void merge_small(std::vector<int32_t>& syms, std::vector<int32_t>& ranks) const;
  void initial_ranks(const std::vector<int32_t>& syms, std::vector<int32_t>& ranks) const;
  void merge_large(std::vector<int32_t>& syms) const;
  void emit(const std::vector<int32_t>& syms, std::vector<int32_t>& out) const;
  void emit_unknown(std::string_view sym_text, std::vector<int32_t>& out) const;

  StringPool syms_;                      // symbol -> string (ids first, then extras)
  std::unique_ptr<SymbolIndex> index_;   // string -> symbol
  int32_t vocab_space_ = 0;              // symbols below are vocabulary ids
  int32_t id_space_ = 0;                 // max(vocabulary, added) id + 1
  std::vector<bool> assigned_;           // by id
  std::vector<int32_t> sym_out_;         // symbol -> output id (-1: not a token)
  StringIdMap added_;                    // added token content -> id (looked up first)
  std::vector<std::string> added_content_;  // added tokens, in file order
  std::vector<int32_t> added_index_;        // by id: index into added_content_, or -1
  std::vector<int32_t> byte_pair_rank_;     // [256 * 256]: rank of the pair of two byte symbols
  std::unique_ptr<PairTable> pairs_;
  int32_t byte_sym_[256] = {};
  int32_t unk_id_ = -1;
  std::string unk_token_;
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  size_t merge_count_ = 0;
};

}  // namespace unmask::tok
