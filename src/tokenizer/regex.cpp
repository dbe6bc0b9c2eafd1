// tokenizer/regex.cpp — Oniguruma -> PCRE2 translation and the PCRE2 match loop.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include <cctype>

#include <nlohmann/json.hpp>
#include <vector>

#include "unmask/error.h"
#include "tokenizer/unicode.h"

namespace unmask::tok {
namespace {

// Oniguruma's Unicode \w, as transformers.js spells it out for JavaScript.
constexpr const char* kWordChars = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
constexpr const char* kHexChars = "0-9A-Fa-f";

std::string word_class() { return std::string("[") + kWordChars + "]"; }
std::string non_word_class() { return std::string("[^") + kWordChars + "]"; }

std::string word_boundary(bool negate) {
  const std::string w = word_class();
  if (!negate) return "(?:(?<!" + w + ")(?=" + w + ")|(?<=" + w + ")(?!" + w + "))";
  return "(?:(?<!" + w + ")(?!" + w + ")|(?<=" + w + ")(?=" + w + "))";
}

bool is_hex4(std::string_view s, size_t p) {
  if (p + 4 > s.size()) return false;
  for (size_t k = p; k < p + 4; ++k) {
    if (!std::isxdigit(static_cast<unsigned char>(s[k]))) return false;
  }
  return true;
}

bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string fold_letter(char c) {
  const char lo = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const char up = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return std::string("[") + lo + up + "]";
}

// Reads a `{...}` body at p (p at '{'); returns its length or 0 when not a quantifier.
size_t quantifier_len(std::string_view s, size_t p) {
  size_t i = p + 1;
  size_t digits1 = 0, digits2 = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits1;
  bool comma = false;
  if (i < s.size() && s[i] == ',') {
    comma = true;
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits2;
  }
  if (i >= s.size() || s[i] != '}') return 0;
  if (digits1 == 0 && (!comma || digits2 == 0)) return 0;
  return i + 1 - p;
}

class Translator {
 public:
  Translator(std::string_view src, const std::string& label) : s_(src), label_(label) {}

  std::string run() {
    size_t i = 0;
    while (i < s_.size()) {
      const char c = s_[i];
      switch (c) {
        case '\\': i = escape(i); break;
        case '[': i = char_class(i); break;
        case ']': emit_atom("\\]"); ++i; break;
        case '}': emit_atom("\\}"); ++i; break;
        case '^': emit_atom("(?:(?<![\\s\\S])|(?<=\\n))"); ++i; break;
        case '$': emit_atom("(?:(?=\\n)|(?![\\s\\S]))"); ++i; break;
        case '(': i = open_group(i); break;
        case ')':
          out_ += ')';
          if (!groups_.empty()) {
            atom_start_ = groups_.back().first;
            fold_ = groups_.back().second;
            groups_.pop_back();
          } else {
            atom_start_ = -1;
          }
          last_quant_ = false;
          ++i;
          break;
        case '|': out_ += '|'; atom_start_ = -1; last_quant_ = false; ++i; break;
        case '{': i = brace(i); break;
        case '+':
          // Possessive quantifiers become greedy ones, as in the JavaScript port.
          if (!last_quant_) out_ += '+';
          last_quant_ = true;
          ++i;
          break;
        case '*': case '?': out_ += c; last_quant_ = true; ++i; break;
        default: {
          const size_t n = static_cast<size_t>(utf8_seq_len(static_cast<unsigned char>(c)));
          if (fold_ && is_ascii_letter(c)) emit_atom(fold_letter(c));
          else emit_atom(std::string(s_.substr(i, n)));
          i += n;
        }
      }
    }
    return out_;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(label_ + ": unsupported regex construct (" + what + ") in pattern " + std::string(s_));
  }

  void emit_atom(const std::string& text) {
    atom_start_ = static_cast<std::ptrdiff_t>(out_.size());
    out_ += text;
    last_quant_ = false;
  }

  // Escapes valid outside classes. Returns the index after the escape.
  size_t escape(size_t i) {
    if (i + 1 >= s_.size()) fail("trailing backslash");
    const char n = s_[i + 1];
    if ((n == 'p' || n == 'P' || n == 'x') && i + 2 < s_.size() && s_[i + 2] == '{') {
      const size_t close = s_.find('}', i + 3);
      if (close == std::string_view::npos) fail("unterminated \\" + std::string(1, n) + "{");
      const std::string body(s_.substr(i + 3, close - i - 3));
      if (n != 'x' && body == "Word") emit_atom(n == 'p' ? word_class() : non_word_class());
      else emit_atom(std::string(s_.substr(i, close + 1 - i)));
      return close + 1;
    }
    if (n == 'u' && is_hex4(s_, i + 2)) {
      emit_atom("\\x{" + std::string(s_.substr(i + 2, 4)) + "}");
      return i + 6;
    }
    switch (n) {
      case 's': emit_atom("\\p{White_Space}"); break;
      case 'S': emit_atom("\\P{White_Space}"); break;
      case 'd': emit_atom("\\p{Nd}"); break;
      case 'D': emit_atom("\\P{Nd}"); break;
      case 'w': emit_atom(word_class()); break;
      case 'W': emit_atom(non_word_class()); break;
      case 'h': emit_atom(std::string("[") + kHexChars + "]"); break;
      case 'H': emit_atom(std::string("[^") + kHexChars + "]"); break;
      case 'b': emit_atom(word_boundary(false)); break;
      case 'B': emit_atom(word_boundary(true)); break;
      case 'v': emit_atom("\\x{0B}"); break;
      case 'a': emit_atom("\\x{07}"); break;
      case 'e': emit_atom("\\x{1B}"); break;
      case 'G': break;  // start-of-search anchor: dropped, as in the JavaScript port
      default: {
        const size_t len = static_cast<size_t>(utf8_seq_len(static_cast<unsigned char>(n)));
        emit_atom("\\" + std::string(s_.substr(i + 1, len)));
        return i + 1 + len;
      }
    }
    return i + 2;
  }

  size_t char_class(size_t i) {
    std::string cls = "[";
    size_t j = i + 1;
    if (j < s_.size() && s_[j] == '^') cls += '^', ++j;
    if (j < s_.size() && s_[j] == ']') cls += "\\]", ++j;  // leading ']' is literal
    std::string folded;  // extra case variants added in (?i: groups
    while (j < s_.size() && s_[j] != ']') {
      const char c = s_[j];
      if (c == '[') {
        if (s_.substr(j, 2) == "[:") {
          const size_t close = s_.find(":]", j + 2);
          if (close == std::string_view::npos) fail("unterminated POSIX class");
          cls += std::string(s_.substr(j, close + 2 - j));
          j = close + 2;
          continue;
        }
        fail("nested character class");
      }
      if (c == '&' && s_.substr(j, 2) == "&&") fail("character class intersection");
      if (c == '\\') {
        if (j + 1 >= s_.size()) fail("trailing backslash");
        const char n = s_[j + 1];
        if ((n == 'p' || n == 'P' || n == 'x') && j + 2 < s_.size() && s_[j + 2] == '{') {
          const size_t close = s_.find('}', j + 3);
          if (close == std::string_view::npos) fail("unterminated escape");
          cls += std::string(s_.substr(j, close + 1 - j));
          j = close + 1;
          continue;
        }
        if (n == 'u' && is_hex4(s_, j + 2)) {
          cls += "\\x{" + std::string(s_.substr(j + 2, 4)) + "}";
          j += 6;
          continue;
        }
        switch (n) {
          case 's': cls += "\\p{White_Space}"; break;
          case 'S': cls += "\\P{White_Space}"; break;
          case 'd': cls += "\\p{Nd}"; break;
          case 'D': cls += "\\P{Nd}"; break;
          case 'w': cls += kWordChars; break;
          case 'h': cls += kHexChars; break;
          case 'v': cls += "\\x{0B}"; break;
          case 'a': cls += "\\x{07}"; break;
          case 'e': cls += "\\x{1B}"; break;
          case 'W': case 'H': fail("negated shorthand inside a class");
          default: {
            const size_t len = static_cast<size_t>(utf8_seq_len(static_cast<unsigned char>(n)));
            cls += "\\" + std::string(s_.substr(j + 1, len));
            j += 1 + len;
            continue;
          }
        }
        j += 2;
        continue;
      }
      if (fold_ && is_ascii_letter(c)) {
        // A range between letters of one case folds to the same range in the other case.
        if (j + 2 < s_.size() && s_[j + 1] == '-' && is_ascii_letter(s_[j + 2]) &&
            std::islower(static_cast<unsigned char>(c)) ==
                std::islower(static_cast<unsigned char>(s_[j + 2]))) {
          const auto flip = [](char x) {
            return static_cast<char>(std::islower(static_cast<unsigned char>(x))
                                         ? std::toupper(static_cast<unsigned char>(x))
                                         : std::tolower(static_cast<unsigned char>(x)));
          };
          cls += std::string(s_.substr(j, 3));
          folded += std::string(1, flip(c)) + "-" + flip(s_[j + 2]);
          j += 3;
          continue;
        }
        cls += c;
        folded += fold_letter(c).substr(1, 2);
        ++j;
        continue;
      }
      const size_t len = static_cast<size_t>(utf8_seq_len(static_cast<unsigned char>(c)));
      cls += std::string(s_.substr(j, len));
      j += len;
    }
    if (j >= s_.size()) fail("unterminated character class");
    cls += folded;
    cls += ']';
    emit_atom(cls);
    return j + 1;
  }

  size_t open_group(size_t i) {
    std::string_view rest = s_.substr(i);
    std::string prefix = "(";
    size_t consumed = 1;
    bool fold = fold_;
    if (rest.substr(0, 4) == "(?i:") {
      prefix = "(?:", consumed = 4, fold = true;
    } else if (rest.substr(0, 3) == "(?>") {
      prefix = "(?:", consumed = 3;  // atomic groups run as plain groups, as in the JS port
    } else if (rest.substr(0, 3) == "(?:" || rest.substr(0, 3) == "(?=" ||
               rest.substr(0, 3) == "(?!") {
      prefix = std::string(rest.substr(0, 3)), consumed = 3;
    } else if (rest.substr(0, 4) == "(?<=" || rest.substr(0, 4) == "(?<!") {
      prefix = std::string(rest.substr(0, 4)), consumed = 4;
    } else if (rest.substr(0, 3) == "(?<") {
      const size_t close = rest.find('>');
      if (close == std::string_view::npos) fail("unterminated group name");
      prefix = std::string(rest.substr(0, close + 1)), consumed = close + 1;
    } else if (rest.substr(0, 2) == "(?") {
      fail("group option " + std::string(rest.substr(0, 4)));
    }
    groups_.emplace_back(static_cast<std::ptrdiff_t>(out_.size()), fold_);
    fold_ = fold;
    out_ += prefix;
    last_quant_ = false;
    return i + consumed;
  }

  size_t brace(size_t i) {
    const size_t qlen = quantifier_len(s_, i);
    if (qlen == 0 || atom_start_ < 0) {
      emit_atom("\\{");
      return i + 1;
    }
    std::string body(s_.substr(i + 1, qlen - 2));
    if (body[0] == ',') body = "0" + body;
    size_t next = i + qlen;
    if (next < s_.size() && (s_[next] == '+' || s_[next] == '*')) {
      // Oniguruma reads `a{2}+` as `(?:a{2})+`, not as a possessive quantifier.
      const auto start = static_cast<size_t>(atom_start_);
      out_ = out_.substr(0, start) + "(?:" + out_.substr(start) + "{" + body + "})" + s_[next];
      ++next;
    } else {
      out_ += "{" + body + "}";
    }
    last_quant_ = true;
    return next;
  }

  std::string_view s_;
  const std::string& label_;
  std::string out_;
  std::ptrdiff_t atom_start_ = -1;
  bool last_quant_ = false;
  bool fold_ = false;
  std::vector<std::pair<std::ptrdiff_t, bool>> groups_;
};

}  // namespace

std::string translate_pattern(std::string_view onig, const std::string& label) {
  return Translator(onig, label).run();
}

std::string escape_regex_literal(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view(".*+?^${}()|[]\\/-#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// Builds the regex of a `pattern` object ({"String": ...} or {"Regex": ...}).
std::unique_ptr<Regex> make_pattern_regex(const nlohmann::json& pattern, const std::string& label) {
  if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
    return std::make_unique<Regex>(translate_pattern(pattern["Regex"].get<std::string>(), label), label);
  }
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    return std::make_unique<Regex>(escape_regex_literal(pattern["String"].get<std::string>()), label);
  }
  throw Error(label + ": pattern must be {\"String\": ...} or {\"Regex\": ...}, got " + pattern.dump());
}

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

Regex::Regex(const std::string& pattern, const std::string& label)
    : pattern_(pattern), label_(label), code_(std::make_unique<Code>()) {
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_compile_context* ctx = pcre2_compile_context_create(nullptr);
  pcre2_set_newline(ctx, PCRE2_NEWLINE_LF);
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &err, &off, ctx);
  pcre2_compile_context_free(ctx);
  if (code_->code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    throw Error(label + ": invalid regex " + pattern + ": " + reinterpret_cast<char*>(msg) +
                " at offset " + std::to_string(off));
  }
  // pcre2_match runs the JIT code when compilation succeeded, the interpreter otherwise.
  pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() = default;

namespace {

// Per-thread match scratch: a JIT stack larger than PCRE2's 32 KiB default (long runs
// of some patterns need it) and match data, reused across calls instead of being
// allocated (and mapped) per call.
struct MatchScratch {
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
  pcre2_match_context* mctx = pcre2_match_context_create(nullptr);
  pcre2_match_data* md = pcre2_match_data_create(32, nullptr);
  MatchScratch() { pcre2_jit_stack_assign(mctx, nullptr, stack); }
  ~MatchScratch() {
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(stack);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

}  // namespace

void Regex::for_each_match(std::string_view text,
                           const std::function<void(size_t, size_t)>& on_match) const {
  thread_local MatchScratch scratch;
  if (!scratch.md || !scratch.mctx) throw Error(label_ + ": out of memory for regex matching");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    // rc == 0: more groups than the ovector holds; the whole-match offsets are still set.
    const int rc = pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, scratch.md, scratch.mctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof(msg));
      throw Error(label_ + ": regex match failed: " + reinterpret_cast<char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(scratch.md);
    const size_t start = ov[0], end = ov[1];
    on_match(start, end);
    if (end > start) {
      pos = end;
    } else {
      if (end >= text.size()) break;
      pos = end + static_cast<size_t>(utf8_seq_len(static_cast<unsigned char>(text[end])));
    }
  }
}

}  // namespace unmask::tok
