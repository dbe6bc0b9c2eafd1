// tokenizer/bpe_trainer.cpp — byte-level BPE training (see unmask/tokenizer_train.h for
// the definition it implements) and the tokenizer.json / tokenizer_config.json writer.
//
// Speed: pieces are counted once (a corpus of a few MB has ~10^5 distinct pieces); pair
// counts are kept incrementally, with for each pair the pieces it may occur in, so a merge
// only revisits the pieces that contain its pair. The best pair comes from a max-heap with
// lazy deletion: an entry whose stored count no longer matches is dropped (and re-pushed
// with the current count when that is lower); a count that grows pushes a new entry, so
// every live pair always has an entry >= its count and the first valid pop is the maximum.
#include "unmask/tokenizer_train.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <queue>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "unmask/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"

namespace unmask {

const char* const kCodePreTokenizerPattern =
    R"([^\r\n\p{L}\p{N}_]?[\p{L}_][\p{L}\p{N}_]*|\p{N}{1,3}| ?[^\s\p{L}\p{N}_]+|\s*[\r\n]+[ \t]*|\s+(?!\S)|\s+)";

namespace {

using Json = nlohmann::ordered_json;

// Split on the pattern, then byte-level (mapping done by the BPE model): the layout the
// Hugging Face library writes for Llama-3 / Qwen style tokenizers.
Json pre_tokenizer_json(const std::string& pattern) {
  return Json{{"type", "Sequence"},
              {"pretokenizers",
               Json::array({Json{{"type", "Split"},
                                 {"pattern", Json{{"Regex", pattern}}},
                                 {"behavior", "Isolated"},
                                 {"invert", false}},
                            Json{{"type", "ByteLevel"},
                                 {"add_prefix_space", false},
                                 {"trim_offsets", false},
                                 {"use_regex", false}}})}};
}

Json byte_level_json() {
  return Json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
}

uint64_t pair_key(int32_t left, int32_t right) { return uint64_t(uint32_t(left)) << 32 | uint32_t(right); }
int32_t pair_left(uint64_t key) { return int32_t(key >> 32); }
int32_t pair_right(uint64_t key) { return int32_t(key & 0xffffffffu); }

struct Piece {
  std::vector<int32_t> syms;  // token ids
  int64_t count = 0;          // occurrences in the corpus
};

struct HeapEntry {
  int64_t count;
  uint64_t pair;
};
// std::priority_queue pops the "largest": higher count first, then the smaller pair.
struct HeapOrder {
  bool operator()(const HeapEntry& x, const HeapEntry& y) const {
    return x.count != y.count ? x.count < y.count : x.pair > y.pair;
  }
};

// Distinct pre-tokenizer pieces of the corpus with their counts, sorted by bytes so the
// piece order (and so everything after) does not depend on hash-map iteration.
std::vector<Piece> count_pieces(const std::vector<std::string_view>& texts, const std::string& pattern,
                                BpeVocabulary& v) {
  const auto pre = tok::PreTokenizer::create(pre_tokenizer_json(pattern), "train-tokenizer pattern");
  std::unordered_map<std::string, int64_t> counts;
  tok::Pieces pieces;
  for (std::string_view raw : texts) {
    const std::string text = tok::sanitize_utf8(raw);
    v.bytes += int64_t(text.size());
    pre->split(text, 0, pieces);
    for (std::string_view p : pieces.items) {
      if (p.empty()) continue;
      ++counts[std::string(p)];
      ++v.pieces;
    }
  }
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Piece> out(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    for (unsigned char c : sorted[i].first) out[i].syms.push_back(int32_t(c));
    out[i].count = sorted[i].second;
  }
  v.distinct_pieces = int64_t(out.size());
  return out;
}

class MergeState {
 public:
  explicit MergeState(std::vector<Piece> pieces) : pieces_(std::move(pieces)) {
    for (size_t w = 0; w < pieces_.size(); ++w) {
      const Piece& p = pieces_[w];
      for (size_t i = 0; i + 1 < p.syms.size(); ++i) {
        const uint64_t k = pair_key(p.syms[i], p.syms[i + 1]);
        counts_[k] += p.count;
        std::vector<int32_t>& where = where_[k];
        if (where.empty() || where.back() != int32_t(w)) where.push_back(int32_t(w));
      }
    }
    for (const auto& [k, c] : counts_) heap_.push({c, k});
  }

  // The most frequent pair (ties: smallest), or count 0 when none is left.
  HeapEntry best() {
    while (!heap_.empty()) {
      const HeapEntry top = heap_.top();
      const auto it = counts_.find(top.pair);
      const int64_t now = it == counts_.end() ? 0 : it->second;
      if (now == top.count) return top;
      heap_.pop();
      if (now > 0 && now < top.count) heap_.push({now, top.pair});
    }
    return {0, 0};
  }

  // Replaces every occurrence of `pair` by `merged` and updates the pair counts.
  void merge(uint64_t pair, int32_t merged) {
    const int32_t a = pair_left(pair), b = pair_right(pair);
    std::vector<int32_t> where = std::move(where_[pair]);
    where_.erase(pair);
    std::sort(where.begin(), where.end());
    where.erase(std::unique(where.begin(), where.end()), where.end());
    delta_.clear();
    std::vector<int32_t> next;
    for (int32_t w : where) {
      Piece& p = pieces_[size_t(w)];
      next.clear();
      bool found = false;
      for (size_t i = 0; i < p.syms.size();) {
        if (i + 1 < p.syms.size() && p.syms[i] == a && p.syms[i + 1] == b) {
          next.push_back(merged);
          i += 2;
          found = true;
        } else {
          next.push_back(p.syms[i++]);
        }
      }
      if (!found) continue;  // a stale entry: an earlier merge took the pair out of this piece
      for (size_t i = 0; i + 1 < p.syms.size(); ++i) delta_[pair_key(p.syms[i], p.syms[i + 1])] -= p.count;
      for (size_t i = 0; i + 1 < next.size(); ++i) {
        const uint64_t k = pair_key(next[i], next[i + 1]);
        delta_[k] += p.count;
        if (next[i] == merged || next[i + 1] == merged) where_[k].push_back(w);
      }
      p.syms.swap(next);
    }
    for (const auto& [k, d] : delta_) {
      if (d == 0) continue;
      int64_t& c = counts_[k];
      c += d;
      if (d > 0) heap_.push({c, k});
      if (c <= 0) counts_.erase(k);
    }
  }

 private:
  std::vector<Piece> pieces_;
  std::unordered_map<uint64_t, int64_t> counts_;               // pair -> occurrences
  std::unordered_map<uint64_t, std::vector<int32_t>> where_;   // pair -> pieces it may be in
  std::unordered_map<uint64_t, int64_t> delta_;                // scratch of one merge
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, HeapOrder> heap_;
};

void validate(const BpeTrainOptions& o) {
  const int specials = int(o.special_tokens.size());
  if (o.vocab_size < 256 + specials)
    throw Error("train-tokenizer: vocab size " + std::to_string(o.vocab_size) + " is below the 256 byte tokens + " +
                std::to_string(specials) + " special tokens");
  if (o.min_frequency < 1)
    throw Error("train-tokenizer: min frequency must be at least 1, got " + std::to_string(o.min_frequency));
  for (size_t i = 0; i < o.special_tokens.size(); ++i) {
    if (o.special_tokens[i].empty()) throw Error("train-tokenizer: special token " + std::to_string(i) + " is empty");
    for (size_t j = 0; j < i; ++j)
      if (o.special_tokens[j] == o.special_tokens[i])
        throw Error("train-tokenizer: special token '" + o.special_tokens[i] + "' is given twice");
  }
  for (const std::string* role : {&o.bos_token, &o.eos_token, &o.pad_token, &o.mask_token}) {
    if (!role->empty() && std::find(o.special_tokens.begin(), o.special_tokens.end(), *role) == o.special_tokens.end())
      throw Error("train-tokenizer: role token '" + *role + "' is not one of the special tokens");
  }
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw Error(path + ": cannot write");
}

Json added_token_json(const std::string& content) {
  return Json{{"content", content}, {"single_word", false}, {"lstrip", false},
              {"rstrip", false},    {"normalized", false},  {"special", true}};
}

}  // namespace

BpeVocabulary train_bpe(const std::vector<std::string_view>& texts, const BpeTrainOptions& options) {
  validate(options);
  BpeVocabulary v;
  v.options = options;
  v.options.on_progress = nullptr;
  v.special_tokens = options.special_tokens;
  MergeState state(count_pieces(texts, options.pattern, v));
  std::unordered_map<std::string, int32_t> ids;
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(std::string(1, char(b)));
    ids[v.tokens.back()] = b;
  }
  const int target = options.vocab_size - int(options.special_tokens.size());
  BpeTrainProgress progress;
  progress.merges_target = target - 256;
  const int report_every = std::max(1, progress.merges_target / 100);
  while (int(v.tokens.size()) < target) {
    const HeapEntry best = state.best();
    if (best.count < options.min_frequency) break;
    const int32_t a = pair_left(best.pair), b = pair_right(best.pair);
    std::string bytes = v.tokens[size_t(a)] + v.tokens[size_t(b)];
    auto [it, is_new] = ids.try_emplace(bytes, int32_t(v.tokens.size()));
    if (is_new) v.tokens.push_back(bytes);
    v.merges.push_back({a, b});
    state.merge(best.pair, it->second);
    progress.merges_done = int(v.merges.size());
    if (options.on_progress && (progress.merges_done % report_every == 0)) {
      progress.best_count = best.count;
      progress.last_token = bytes;
      options.on_progress(progress);
    }
  }
  return v;
}

void write_bpe_tokenizer(const BpeVocabulary& v, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the folder: " + ec.message());
  const int32_t n = int32_t(v.tokens.size());
  Json vocab = Json::object();
  for (int32_t id = 0; id < n; ++id) vocab[tok::bytes_to_byte_level(v.tokens[size_t(id)])] = id;
  Json merges = Json::array();
  for (const auto& [a, b] : v.merges)
    merges.push_back(Json::array({tok::bytes_to_byte_level(v.tokens[size_t(a)]), tok::bytes_to_byte_level(v.tokens[size_t(b)])}));
  Json added = Json::array();
  Json added_decoder = Json::object();
  for (size_t i = 0; i < v.special_tokens.size(); ++i) {
    Json t = Json{{"id", n + int32_t(i)}};
    t.update(added_token_json(v.special_tokens[i]));
    added.push_back(t);
    added_decoder[std::to_string(n + int32_t(i))] = added_token_json(v.special_tokens[i]);
  }
  const Json tokenizer = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer_json(v.options.pattern)},
      {"post_processor", byte_level_json()},
      {"decoder", byte_level_json()},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges}}}};
  Json config = {{"add_bos_token", false}, {"add_eos_token", false}};
  const BpeTrainOptions& o = v.options;
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"bos_token", &o.bos_token},
                                   {"eos_token", &o.eos_token},
                                   {"pad_token", &o.pad_token},
                                   {"mask_token", &o.mask_token}})
    if (!value->empty()) config[key] = *value;
  config["clean_up_tokenization_spaces"] = false;
  config["model_max_length"] = o.model_max_length;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  config["added_tokens_decoder"] = added_decoder;
  // error_handler replace: never throws on a token that is not valid UTF-8 (none should be:
  // byte-level spellings are always valid).
  write_text(dir + "/tokenizer.json", tokenizer.dump(1, ' ', false, Json::error_handler_t::replace) + "\n");
  write_text(dir + "/tokenizer_config.json", config.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
}

}  // namespace unmask
