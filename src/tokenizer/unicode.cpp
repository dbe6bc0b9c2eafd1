// tokenizer/unicode.cpp — UTF-8 decoding/repair, byte-level alphabet, white space sets.
#include "tokenizer/unicode.h"

namespace unmask::tok {

char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  const int len = utf8_seq_len(b0);
  char32_t cp = len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// For a lead byte: how many continuation bytes follow and the allowed range of the
// first one (the second-byte restrictions exclude overlongs, surrogates, > U+10FFFF).
struct LeadInfo {
  int need;
  unsigned char lo, hi;
};

LeadInfo lead_info(unsigned char b) {
  if (b >= 0xC2 && b <= 0xDF) return {1, 0x80, 0xBF};
  if (b == 0xE0) return {2, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {2, 0x80, 0xBF};
  if (b == 0xED) return {2, 0x80, 0x9F};
  if (b == 0xF0) return {3, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {3, 0x80, 0xBF};
  if (b == 0xF4) return {3, 0x80, 0x8F};
  return {-1, 0, 0};
}

// Length of the valid sequence at s[i], or -(bytes of the maximal ill-formed subpart).
int check_sequence(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return 1;
  const LeadInfo li = lead_info(b);
  if (li.need < 0) return -1;
  size_t j = i + 1;
  unsigned char lo = li.lo, hi = li.hi;
  for (int k = 0; k < li.need; ++k, ++j) {
    if (j >= s.size()) return -static_cast<int>(j - i);
    const auto c = static_cast<unsigned char>(s[j]);
    if (c < lo || c > hi) return -static_cast<int>(j - i);
    lo = 0x80;
    hi = 0xBF;
  }
  return static_cast<int>(j - i);
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const int n = check_sequence(s, i);
    if (n < 0) return false;
    i += static_cast<size_t>(n);
  }
  return true;
}

void append_sanitized_utf8(std::string& out, std::string_view s) {
  size_t i = 0, run = 0;  // [run, i) is valid and not yet copied
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const int n = check_sequence(s, i);
    if (n > 0) {
      i += static_cast<size_t>(n);
      continue;
    }
    out.append(s.substr(run, i - run));
    append_utf8(out, kReplacementChar);
    i += static_cast<size_t>(-n);
    run = i;
  }
  out.append(s.substr(run));
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_sanitized_utf8(out, s);
  return out;
}

size_t complete_utf8_prefix(std::string_view s) {
  const size_t n = s.size();
  // The last sequence starts at most 3 bytes back; find its lead byte.
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const size_t start = n - back;
    const auto b = static_cast<unsigned char>(s[start]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const LeadInfo li = lead_info(b);
    if (li.need < 0 || static_cast<int>(back) > li.need) return n;  // ASCII / complete / invalid
    // Incomplete: hold it back only if the bytes so far can still become valid.
    unsigned char lo = li.lo, hi = li.hi;
    for (size_t j = start + 1; j < n; ++j) {
      const auto c = static_cast<unsigned char>(s[j]);
      if (c < lo || c > hi) return n;
      lo = 0x80;
      hi = 0xBF;
    }
    return start;
  }
  return n;
}

const ByteLevelTables& byte_level_tables() {
  static const ByteLevelTables tables = [] {
    ByteLevelTables t;
    t.char_to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t c = printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      t.byte_to_char[b] = c;
      append_utf8(t.byte_to_utf8[b], c);
      t.char_to_byte[c] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return tables;
}

bool byte_level_to_bytes(std::string_view s, std::string& out) {
  const ByteLevelTables& t = byte_level_tables();
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) >= 0x80 && check_sequence(s, i) < 0) return false;
    const char32_t c = next_code_point(s, i);
    if (c >= t.char_to_byte.size() || t.char_to_byte[c] < 0) return false;
    out.push_back(static_cast<char>(t.char_to_byte[c]));
  }
  return true;
}

std::string bytes_to_byte_level(std::string_view raw) {
  const ByteLevelTables& t = byte_level_tables();
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char b : raw) out += t.byte_to_utf8[b];
  return out;
}

bool is_js_trim_space(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

bool is_white_space(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string_view js_trim_start(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!is_js_trim_space(next_code_point(s, j))) break;
    i = j;
  }
  return s.substr(i);
}

std::string_view js_trim_end(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t j = start;
    if (!is_js_trim_space(next_code_point(s, j))) break;
    end = start;
  }
  return s.substr(0, end);
}

}  // namespace unmask::tok
