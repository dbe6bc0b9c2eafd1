// tokenizer/unicode_norm.cpp — canonical decomposition / composition (NFD, NFC).
//
// Standard algorithm (UAX #15): full canonical decomposition (tables + Hangul
// arithmetic), canonical ordering of non-starters by combining class, then
// canonical composition of unblocked pairs. Data: unicode_tables.cpp.
#include <algorithm>
#include <unordered_map>
#include <vector>

#include "tokenizer/unicode.h"
#include "tokenizer/unicode_tables.h"

namespace unmask::tok {
namespace {

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr int kSCount = kLCount * kNCount;

struct NormData {
  std::unordered_map<char32_t, std::pair<uint32_t, uint32_t>> decomp;  // cp -> (offset, n)
  std::unordered_map<uint64_t, char32_t> comp;
};

const NormData& norm_data() {
  static const NormData data = [] {
    NormData d;
    for (size_t i = 0; i + 1 < tables::kDecompFlatCount;) {
      const char32_t cp = tables::kDecompFlat[i];
      const auto n = static_cast<uint32_t>(tables::kDecompFlat[i + 1]);
      d.decomp.emplace(cp, std::make_pair(static_cast<uint32_t>(i + 2), n));
      i += 2 + n;
    }
    for (size_t i = 0; i < tables::kCompCount; ++i) {
      const auto& e = tables::kComp[i];
      d.comp.emplace((static_cast<uint64_t>(e.first) << 32) | e.second, e.composite);
    }
    return d;
  }();
  return data;
}

int ccc(char32_t cp) {
  if (cp < 0x300) return 0;
  size_t lo = 0, hi = tables::kCccCount;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (tables::kCcc[mid].last < cp) lo = mid + 1;
    else hi = mid;
  }
  return lo < tables::kCccCount && tables::kCcc[lo].first <= cp ? tables::kCcc[lo].ccc : 0;
}

bool nfc_maybe(char32_t cp) {
  if (cp < 0x300) return false;
  size_t lo = 0, hi = tables::kNfcMaybeCount;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (tables::kNfcMaybe[mid].last < cp) lo = mid + 1;
    else hi = mid;
  }
  if (lo < tables::kNfcMaybeCount && tables::kNfcMaybe[lo].first <= cp) return true;
  // Hangul vowel and trailing jamo compose algorithmically with what precedes them.
  return (cp >= kVBase && cp < kVBase + kVCount) || (cp > kTBase && cp < kTBase + kTCount);
}

void decompose_into(std::string_view s, std::vector<char32_t>& out) {
  const NormData& d = norm_data();
  size_t i = 0;
  while (i < s.size()) {
    const char32_t cp = next_code_point(s, i);
    if (cp < 0xC0) {
      out.push_back(cp);
    } else if (cp >= kSBase && cp < kSBase + kSCount) {
      const int si = static_cast<int>(cp - kSBase);
      out.push_back(kLBase + si / kNCount);
      out.push_back(kVBase + (si % kNCount) / kTCount);
      if (si % kTCount != 0) out.push_back(kTBase + si % kTCount);
    } else if (auto it = d.decomp.find(cp); it != d.decomp.end()) {
      const auto [off, n] = it->second;
      out.insert(out.end(), tables::kDecompFlat + off, tables::kDecompFlat + off + n);
    } else {
      out.push_back(cp);
    }
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  size_t k = 0;
  while (k < out.size()) {
    if (ccc(out[k]) == 0) {
      ++k;
      continue;
    }
    size_t end = k;
    while (end < out.size() && ccc(out[end]) != 0) ++end;
    if (end - k > 1) {
      std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(k),
                       out.begin() + static_cast<std::ptrdiff_t>(end),
                       [](char32_t a, char32_t b) { return ccc(a) < ccc(b); });
    }
    k = end;
  }
}

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const NormData& d = norm_data();
  auto it = d.comp.find((static_cast<uint64_t>(a) << 32) | b);
  return it == d.comp.end() ? 0 : it->second;
}

}  // namespace

bool is_nfc_quick(std::string_view s) {
  int last_ccc = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      last_ccc = 0;
      continue;
    }
    const char32_t cp = next_code_point(s, i);
    const int c = ccc(cp);
    if (c != 0 && last_ccc > c) return false;
    if (nfc_maybe(cp)) return false;
    last_ccc = c;
  }
  return true;
}

std::string nfd(std::string_view s) {
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  decompose_into(s, cps);
  std::string out;
  out.reserve(s.size() + 8);
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

std::string nfc(std::string_view s) {
  if (is_nfc_quick(s)) return std::string(s);
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  decompose_into(s, cps);
  std::vector<char32_t> res;
  res.reserve(cps.size());
  std::ptrdiff_t starter = -1;
  int prev_ccc = 0;
  for (char32_t cp : cps) {
    const int c = ccc(cp);
    if (starter >= 0) {
      const bool adjacent = res.size() == static_cast<size_t>(starter) + 1;
      if (adjacent || (prev_ccc != 0 && prev_ccc < c)) {
        if (char32_t comp = compose_pair(res[static_cast<size_t>(starter)], cp); comp != 0) {
          res[static_cast<size_t>(starter)] = comp;
          continue;
        }
      }
    }
    if (c == 0) starter = static_cast<std::ptrdiff_t>(res.size());
    prev_ccc = c;
    res.push_back(cp);
  }
  std::string out;
  out.reserve(s.size());
  for (char32_t c : res) append_utf8(out, c);
  return out;
}

}  // namespace unmask::tok
