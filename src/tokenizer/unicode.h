// tokenizer/unicode.h — UTF-8 and Unicode helpers shared by the tokenizer pieces.
//
// Owns no state beyond function-local constant tables. Everything works on UTF-8
// std::string / std::string_view; functions that require valid UTF-8 say so (the
// tokenizer sanitizes input once at the boundary, see sanitize_utf8).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace unmask::tok {

constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes one code point at s[i] of VALID UTF-8 and advances i.
char32_t next_code_point(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t cp);
// Length in bytes of the UTF-8 sequence starting with lead byte b (1 for invalid leads).
inline int utf8_seq_len(unsigned char b) {
  return b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
}

// Returns true when s is valid UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);
// Appends s to out with every ill-formed subsequence replaced by U+FFFD, one per
// maximal subpart (the WHATWG / Unicode "best practice" that TextDecoder and
// Python's errors="replace" follow).
void append_sanitized_utf8(std::string& out, std::string_view s);
std::string sanitize_utf8(std::string_view s);
// Length of the longest prefix of s that does not end inside a still-incomplete
// (but so far valid) UTF-8 sequence. Bytes that can never become valid are not held.
size_t complete_utf8_prefix(std::string_view s);

// The GPT-2 byte <-> printable-character mapping of byte-level BPE.
struct ByteLevelTables {
  std::array<char32_t, 256> byte_to_char{};
  std::array<std::string, 256> byte_to_utf8{};  // UTF-8 of byte_to_char
  // char (< 0x144) -> byte, or -1 when the char is not part of the alphabet.
  std::array<int16_t, 0x144> char_to_byte{};
};
const ByteLevelTables& byte_level_tables();
// Maps a byte-level string back to raw bytes. Returns false (out unspecified) when
// a character is outside the byte-level alphabet.
bool byte_level_to_bytes(std::string_view s, std::string& out);
std::string bytes_to_byte_level(std::string_view raw);

// White space as JavaScript's String.prototype.trim sees it (WhiteSpace + LineTerminator).
bool is_js_trim_space(char32_t cp);
std::string_view js_trim_start(std::string_view s);
std::string_view js_trim_end(std::string_view s);
// Unicode White_Space property.
bool is_white_space(char32_t cp);

// Canonical normalization (unicode_norm.cpp). Input must be valid UTF-8.
std::string nfc(std::string_view s);
std::string nfd(std::string_view s);
bool is_nfc_quick(std::string_view s);  // true: certainly already NFC

}  // namespace unmask::tok
