// tokenizer/bpe.cpp — BPE merging over integer symbols.
//
// Merge order is the reference's: repeatedly merge the adjacent pair with the lowest
// merge rank, the leftmost one (by original position) among equal ranks. Short words
// use a linear scan over cached pair ranks; long ones a heap with lazy invalidation.
#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "unmask/error.h"
#include "tokenizer/unicode.h"

namespace unmask::tok {

// Open-addressing map (a, b) -> (rank, merged symbol); built once, read-only after.
struct BpeModel::PairTable {
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t result = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  std::vector<Slot> slots;
  uint64_t mask = 0;
  int shift = 0;

  explicit PairTable(size_t expected) {
    size_t cap = 16;
    int bits = 4;
    while (cap < expected * 2) cap <<= 1, ++bits;
    slots.resize(cap);
    mask = cap - 1;
    shift = 64 - bits;
  }
  static uint64_t key_of(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  size_t home(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift); }
  // Later duplicates of a pair replace earlier ones (the reference keeps the last rank).
  void put(int32_t a, int32_t b, int32_t rank, int32_t result) {
    const uint64_t key = key_of(a, b);
    for (size_t i = home(key);; i = (i + 1) & mask) {
      if (slots[i].key == kEmpty || slots[i].key == key) {
        slots[i] = {key, rank, result};
        return;
      }
    }
  }
  const Slot* find(int32_t a, int32_t b) const {
    const uint64_t key = key_of(a, b);
    for (size_t i = home(key);; i = (i + 1) & mask) {
      if (slots[i].key == key) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

// String -> symbol, open addressing over the symbol pool (no per-entry allocation:
// the loader's hot path on 150k-entry vocabularies).
class BpeModel::SymbolIndex {
 public:
  explicit SymbolIndex(const StringPool& pool) : pool_(pool) { rehash(1024); }
  static uint64_t hash(std::string_view s) { return WordCache::hash(s); }
  int32_t find(std::string_view s) const { return find(s, hash(s)); }
  int32_t find(std::string_view s, uint64_t h) const {
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& sl = slots_[i];
      if (sl.sym < 0) return -1;
      if (sl.tag == tag && pool_.get(static_cast<size_t>(sl.sym)) == s) return sl.sym;
    }
  }
  // Maps s to sym (replacing an earlier mapping of the same string).
  void put(std::string_view s, uint64_t h, int32_t sym) {
    if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& sl = slots_[i];
      if (sl.sym < 0) {
        sl = {tag, sym};
        ++count_;
        return;
      }
      if (sl.tag == tag && pool_.get(static_cast<size_t>(sl.sym)) == s) {
        sl.sym = sym;
        return;
      }
    }
  }
  void reserve(size_t n) {
    if (n * 2 > slots_.size()) rehash(n * 2);
  }
  // Loading does ~10^6 lookups in tables far larger than the caches: batches first
  // touch the home slots (and the strings they point to), then look up for real.
  void prefetch_slot(uint64_t h) const { __builtin_prefetch(&slots_[h & mask_]); }
  void prefetch_key(uint64_t h) const {
    const Slot& sl = slots_[h & mask_];
    if (sl.sym >= 0 && sl.tag == static_cast<uint32_t>(h >> 32)) {
      __builtin_prefetch(pool_.chars.data() + pool_.offsets[static_cast<size_t>(sl.sym)]);
    }
  }

 private:
  struct Slot {
    uint32_t tag = 0;
    int32_t sym = -1;
  };
  void rehash(size_t want) {
    size_t cap = 16;
    while (cap < want) cap <<= 1;
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    count_ = 0;
    for (const Slot& sl : old) {
      if (sl.sym < 0) continue;
      const uint64_t h = hash(pool_.get(static_cast<size_t>(sl.sym)));
      for (size_t i = h & mask_;; i = (i + 1) & mask_) {
        if (slots_[i].sym < 0) {
          slots_[i] = {static_cast<uint32_t>(h >> 32), sl.sym};
          ++count_;
          break;
        }
      }
    }
  }
  const StringPool& pool_;
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
};

namespace {
constexpr int32_t kNoRank = INT32_MAX;
constexpr size_t kSmallWord = 48;      // linear scan below, heap above
constexpr size_t kMaxCachedPiece = 256;
}  // namespace

BpeModel::BpeModel(TokenizerFile& file, const nlohmann::json& cfg, const std::string& label) {
  const std::string where = label + ": model";
  if (!file.has_vocab || file.vocab_is_list) throw Error(where + ".vocab: missing or not a {token: id} object");
  auto str_or_empty = [&](const char* key) {
    return cfg.contains(key) && cfg[key].is_string() ? cfg[key].get<std::string>() : std::string();
  };
  if (!str_or_empty("continuing_subword_prefix").empty() || !str_or_empty("end_of_word_suffix").empty()) {
    throw Error(where + ": continuing_subword_prefix / end_of_word_suffix are not supported");
  }
  ignore_merges_ = cfg.value("ignore_merges", false);
  byte_fallback_ = cfg.value("byte_fallback", false);
  unk_token_ = str_or_empty("unk_token");

  // Symbols [0, vocab_space_) are the vocabulary ids, laid out in id order.
  int32_t max_id = -1;
  for (int32_t id : file.vocab_ids) max_id = std::max(max_id, id);
  vocab_space_ = max_id + 1;
  id_space_ = vocab_space_;
  assigned_.assign(static_cast<size_t>(vocab_space_), false);
  std::vector<uint32_t> entry_of(static_cast<size_t>(vocab_space_), UINT32_MAX);
  for (size_t e = 0; e < file.vocab_ids.size(); ++e) entry_of[static_cast<size_t>(file.vocab_ids[e])] = static_cast<uint32_t>(e);
  syms_.chars.reserve(file.vocab_tokens.chars.size() + file.merge_left.chars.size() / 4);
  syms_.offsets.reserve(static_cast<size_t>(vocab_space_) + file.merge_left.size() / 4 + 300);
  for (int32_t id = 0; id < vocab_space_; ++id) {
    const uint32_t e = entry_of[static_cast<size_t>(id)];
    syms_.push(e == UINT32_MAX ? std::string_view() : file.vocab_tokens.get(e));
  }
  index_ = std::make_unique<SymbolIndex>(syms_);
  index_->reserve(file.vocab_ids.size() + 1024);
  // In file order, so a string listed twice maps to its last id (as the reference).
  constexpr size_t kBatch = 32;
  uint64_t hashes[3 * kBatch];
  for (size_t base = 0; base < file.vocab_ids.size(); base += kBatch) {
    const size_t m = std::min(kBatch, file.vocab_ids.size() - base);
    for (size_t k = 0; k < m; ++k) {
      hashes[k] = SymbolIndex::hash(file.vocab_tokens.get(base + k));
      index_->prefetch_slot(hashes[k]);
    }
    for (size_t k = 0; k < m; ++k) {
      const int32_t id = file.vocab_ids[base + k];
      assigned_[static_cast<size_t>(id)] = true;
      index_->put(file.vocab_tokens.get(base + k), hashes[k], id);
    }
  }
  file.vocab_tokens = StringPool();
  file.vocab_ids = {};

  const ByteLevelTables& bl = byte_level_tables();
  for (int b = 0; b < 256; ++b) byte_sym_[b] = sym_of(bl.byte_to_utf8[b], SymbolIndex::hash(bl.byte_to_utf8[b]), true);

  pairs_ = std::make_unique<PairTable>(file.merge_left.size() + 1);
  std::string joined[kBatch];
  for (size_t base = 0; base < file.merge_left.size(); base += kBatch) {
    const size_t m = std::min(kBatch, file.merge_left.size() - base);
    for (size_t k = 0; k < m; ++k) {
      const std::string_view a = file.merge_left.get(base + k), b = file.merge_right.get(base + k);
      joined[k].assign(a).append(b);
      hashes[3 * k] = SymbolIndex::hash(a);
      hashes[3 * k + 1] = SymbolIndex::hash(b);
      hashes[3 * k + 2] = SymbolIndex::hash(joined[k]);
      for (int j = 0; j < 3; ++j) index_->prefetch_slot(hashes[3 * k + j]);
    }
    for (size_t k = 0; k < 3 * m; ++k) index_->prefetch_key(hashes[k]);
    for (size_t k = 0; k < m; ++k) {
      const size_t r = base + k;
      const int32_t sa = sym_of(file.merge_left.get(r), hashes[3 * k], true);
      const int32_t sb = sym_of(file.merge_right.get(r), hashes[3 * k + 1], true);
      const int32_t res = sym_of(joined[k], hashes[3 * k + 2], true);
      pairs_->put(sa, sb, static_cast<int32_t>(r), res);
    }
  }
  merge_count_ = file.merge_left.size();
  file.merge_left = StringPool();
  file.merge_right = StringPool();
  byte_pair_rank_.assign(256 * 256, kNoRank);
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      if (const PairTable::Slot* sl = pairs_->find(byte_sym_[a], byte_sym_[b])) byte_pair_rank_[a * 256 + b] = sl->rank;
    }
  }

  sym_out_.assign(syms_.size(), -1);
  for (int32_t id = 0; id < vocab_space_; ++id) {
    if (assigned_[static_cast<size_t>(id)]) sym_out_[static_cast<size_t>(id)] = id;
  }
  unk_id_ = unk_token_.empty() ? -1 : token_to_id(unk_token_);
}

BpeModel::~BpeModel() = default;

int32_t BpeModel::sym_of(std::string_view s, uint64_t h, bool create) {
  const int32_t found = index_->find(s, h);
  if (found >= 0 || !create) return found;
  const auto sym = static_cast<int32_t>(syms_.size());
  syms_.push(s);
  index_->put(s, h, sym);
  return sym;
}

void BpeModel::set_added_tokens(const std::vector<std::pair<std::string, int32_t>>& added) {
  for (const auto& [content, id] : added) id_space_ = std::max(id_space_, id + 1);
  assigned_.resize(static_cast<size_t>(id_space_), false);
  added_index_.assign(static_cast<size_t>(id_space_), -1);
  for (const auto& [content, id] : added) {
    added_index_[static_cast<size_t>(id)] = static_cast<int32_t>(added_content_.size());
    added_content_.push_back(content);
  }
  for (const auto& [content, id] : added) {
    // A symbol spelled like an added token is emitted with the added token's id.
    if (const int32_t sym = index_->find(content); sym >= 0) sym_out_[static_cast<size_t>(sym)] = id;
    added_[content] = id;
    assigned_[static_cast<size_t>(id)] = true;
  }
  if (!unk_token_.empty()) unk_id_ = token_to_id(unk_token_);
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  if (!added_.empty()) {
    if (auto it = added_.find(token); it != added_.end()) return it->second;
  }
  const int32_t sym = index_->find(token);
  return sym >= 0 && sym < vocab_space_ ? sym : -1;
}

std::string_view BpeModel::id_to_token(int32_t id) const {
  if (!added_index_.empty()) {
    if (const int32_t a = added_index_[static_cast<size_t>(id)]; a >= 0) return added_content_[static_cast<size_t>(a)];
  }
  return id < vocab_space_ ? syms_.get(static_cast<size_t>(id)) : std::string_view();
}

void BpeModel::initial_ranks(const std::vector<int32_t>& syms, std::vector<int32_t>& ranks) const {
  ranks.resize(syms.size());
  for (size_t i = 0; i + 1 < syms.size(); ++i) {
    const PairTable::Slot* s = pairs_->find(syms[i], syms[i + 1]);
    ranks[i] = s ? s->rank : kNoRank;
  }
}

void BpeModel::merge_small(std::vector<int32_t>& syms, std::vector<int32_t>& ranks) const {
  auto rank_at = [&](size_t i) {
    const PairTable::Slot* s = pairs_->find(syms[i], syms[i + 1]);
    return s ? s->rank : kNoRank;
  };
  size_t len = syms.size();
  while (len > 1) {
    size_t best = 0;
    int32_t best_rank = kNoRank;
    for (size_t i = 0; i + 1 < len; ++i) {
      if (ranks[i] < best_rank) best_rank = ranks[i], best = i;
    }
    if (best_rank == kNoRank) break;
    syms[best] = pairs_->find(syms[best], syms[best + 1])->result;
    syms.erase(syms.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    ranks.erase(ranks.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    --len;
    if (best + 1 < len) ranks[best] = rank_at(best);
    if (best > 0) ranks[best - 1] = rank_at(best - 1);
  }
}

void BpeModel::merge_large(std::vector<int32_t>& syms) const {
  const auto n = static_cast<int32_t>(syms.size());
  std::vector<int32_t> prev(syms.size()), next(syms.size());
  std::vector<char> alive(syms.size(), 1);
  for (int32_t i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
  struct Cand {
    int32_t rank, pos, left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<>> heap;
  auto push = [&](int32_t pos) {
    const int32_t nx = next[pos];
    if (nx < 0) return;
    if (const PairTable::Slot* s = pairs_->find(syms[pos], syms[nx])) heap.push({s->rank, pos, syms[pos], syms[nx]});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int32_t nx = next[c.pos];
    if (!alive[c.pos] || nx < 0 || syms[c.pos] != c.left || syms[nx] != c.right) continue;
    syms[c.pos] = pairs_->find(c.left, c.right)->result;
    alive[nx] = 0;
    next[c.pos] = next[nx];
    if (next[nx] >= 0) prev[next[nx]] = c.pos;
    if (prev[c.pos] >= 0) push(prev[c.pos]);
    push(c.pos);
  }
  size_t w = 0;
  for (int32_t i = 0; i >= 0 && i < n; i = next[i]) syms[w++] = syms[i];
  syms.resize(w);
}

void BpeModel::emit_unknown(std::string_view sym_text, std::vector<int32_t>& out) const {
  // The reference maps a final token through its whole token map (added tokens too).
  if (const int32_t id = token_to_id(sym_text); id >= 0) {
    out.push_back(id);
    return;
  }
  if (byte_fallback_) {
    const size_t start = out.size();
    char name[8];
    for (unsigned char b : sym_text) {
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      const int32_t id = token_to_id(name);
      if (id < 0) {
        out.resize(start);
        break;
      }
      out.push_back(id);
    }
    if (out.size() > start) return;
  }
  // Without an unk token the reference drops the symbol.
  if (unk_id_ >= 0) out.push_back(unk_id_);
}

void BpeModel::emit(const std::vector<int32_t>& syms, std::vector<int32_t>& out) const {
  for (int32_t s : syms) {
    const int32_t id = sym_out_[static_cast<size_t>(s)];
    if (id >= 0) out.push_back(id);
    else emit_unknown(syms_.get(static_cast<size_t>(s)), out);
  }
}

void BpeModel::encode(std::string_view piece, bool raw_bytes, std::vector<int32_t>& out, BpeCache& cache) const {
  if (piece.empty()) return;
  if (raw_bytes && piece.size() == 1) {
    const int32_t sym = byte_sym_[static_cast<unsigned char>(piece[0])];
    if (const int32_t id = sym_out_[static_cast<size_t>(sym)]; id >= 0) out.push_back(id);
    else emit_unknown(syms_.get(static_cast<size_t>(sym)), out);
    return;
  }
  const bool cacheable = piece.size() < kMaxCachedPiece;
  const uint64_t h = cacheable ? WordCache::hash(piece) : 0;
  if (cacheable && cache.words.find(piece, h, out)) return;
  const size_t out_start = out.size();
  if (ignore_merges_) {
    // A pre-token that is itself a token is emitted whole.
    std::string_view spelled = piece;
    if (raw_bytes) {
      cache.text.clear();
      const ByteLevelTables& bl = byte_level_tables();
      for (unsigned char b : piece) cache.text += bl.byte_to_utf8[b];
      spelled = cache.text;
    }
    if (const int32_t id = token_to_id(spelled); id >= 0) out.push_back(id);
  }
  if (out.size() == out_start) {
    std::vector<int32_t>& syms = cache.syms;
    std::vector<int32_t>& ranks = cache.ranks;
    syms.clear();
    auto merge_and_emit = [&](bool ranks_ready) {
      if (syms.empty()) return;
      if (syms.size() <= kSmallWord) {
        if (!ranks_ready) initial_ranks(syms, ranks);
        merge_small(syms, ranks);
      } else {
        merge_large(syms);
      }
      emit(syms, out);
      syms.clear();
    };
    if (raw_bytes) {
      // First-level pairs come from a dense byte x byte table (no hashing).
      const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
      const size_t n = piece.size();
      syms.resize(n);
      if (n <= kSmallWord) ranks.resize(n);
      for (size_t i = 0; i < n; ++i) {
        syms[i] = byte_sym_[p[i]];
        if (n <= kSmallWord && i + 1 < n) ranks[i] = byte_pair_rank_[p[i] * 256u + p[i + 1]];
      }
      merge_and_emit(true);
    } else {
      // Characters that are no symbol cannot merge: they go out alone as unknowns.
      size_t i = 0;
      while (i < piece.size()) {
        const size_t start = i;
        next_code_point(piece, i);
        const std::string_view ch = piece.substr(start, i - start);
        if (const int32_t sym = index_->find(ch); sym >= 0) {
          syms.push_back(sym);
        } else {
          merge_and_emit(false);
          emit_unknown(ch, out);
        }
      }
      merge_and_emit(false);
    }
  }
  if (cacheable) cache.words.insert(piece, h, out.data() + out_start, out.size() - out_start);
}

}  // namespace unmask::tok
