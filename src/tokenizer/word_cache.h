// tokenizer/word_cache.h — per-encode-call memo of pre-token -> ids.
//
// Running text repeats most of its pre-tokens, so each encode() keeps the ids of the
// pieces it has already merged. Open addressing over flat arrays (no allocation per
// entry); owns its storage; one instance per call, so no locking.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace unmask::tok {

class WordCache {
 public:
  static constexpr size_t kMaxEntries = 1 << 16;  // then it starts over (bounds memory)

  static uint64_t hash(std::string_view s) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 31;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, s.data() + i, s.size() - i);
    h = (h ^ tail) * 0x94D049BB133111EBull;
    return h ^ (h >> 29);
  }

  // Appends the cached ids of `piece` to out; false when absent.
  bool find(std::string_view piece, uint64_t h, std::vector<int32_t>& out) const {
    if (slots_.empty()) return false;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key_len == kEmpty) return false;
      if (s.hash == h && s.key_len == piece.size() && std::memcmp(keys_.data() + s.key_off, piece.data(), piece.size()) == 0) {
        out.insert(out.end(), ids_.begin() + s.ids_off, ids_.begin() + s.ids_off + s.ids_len);
        return true;
      }
    }
  }

  void insert(std::string_view piece, uint64_t h, const int32_t* ids, size_t n) {
    if (count_ >= kMaxEntries) clear();
    if ((count_ + 1) * 2 > slots_.size()) grow();
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.key_len != kEmpty) continue;
      s = {h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(piece.size()),
           static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(n)};
      keys_.append(piece);
      ids_.insert(ids_.end(), ids, ids + n);
      ++count_;
      return;
    }
  }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0, key_len = kEmpty, ids_off = 0, ids_len = 0;
  };
  void clear() {
    slots_.assign(slots_.size(), Slot{});
    keys_.clear();
    ids_.clear();
    count_ = 0;
  }
  void grow() {
    const size_t cap = slots_.empty() ? 64 : slots_.size() * 2;
    std::vector<Slot> old(cap);
    old.swap(slots_);
    mask_ = cap - 1;
    for (const Slot& s : old) {
      if (s.key_len == kEmpty) continue;
      size_t i = s.hash & mask_;
      while (slots_[i].key_len != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t mask_ = 0, count_ = 0;
};

}  // namespace unmask::tok
