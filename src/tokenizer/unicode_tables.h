// tokenizer/unicode_tables.h — generated Unicode data (unicode_tables.cpp) for NFC/NFD.
// Owns nothing at run time: plain constant arrays, read by unicode_norm.cpp only.
#pragma once
#include <cstddef>

namespace unmask::tok::tables {

struct CccRange { char32_t first, last; unsigned char ccc; };
struct CompEntry { char32_t first, second, composite; };
struct QcRange { char32_t first, last; };

extern const CccRange kCcc[];  // sorted, non-overlapping, non-zero classes only
extern const size_t kCccCount;
// Records: code point, n, then its full canonical decomposition (n code points).
// Sorted by code point. Hangul syllables are algorithmic and not listed.
extern const char32_t kDecompFlat[];
extern const size_t kDecompFlatCount;
extern const CompEntry kComp[];  // primary composites, sorted by (first, second)
extern const size_t kCompCount;
// Characters that may change under NFC depending on context (quick check No or Maybe).
extern const QcRange kNfcMaybe[];
extern const size_t kNfcMaybeCount;

}  // namespace unmask::tok::tables
