// tokenizer/jinja_lexer.cpp — template preprocessing and tokenization.
#include "tokenizer/jinja_lexer.h"

#include <cctype>

#include "unmask/error.h"
#include "tokenizer/unicode.h"

namespace unmask::tok::jinja {
namespace {

// Template text with the original line of every byte, so that the whitespace
// rewrites below keep error messages pointing at the author's lines.
struct Source {
  std::string s;
  std::vector<int> line;

  void erase(size_t pos, size_t n) {
    s.erase(pos, n);
    line.erase(line.begin() + static_cast<std::ptrdiff_t>(pos), line.begin() + static_cast<std::ptrdiff_t>(pos + n));
  }
  int line_at(size_t pos) const { return line.empty() ? 1 : line[std::min(pos, line.size() - 1)]; }
};

bool is_space_cp(std::string_view s, size_t pos, size_t* len) {
  size_t j = pos;
  const char32_t cp = next_code_point(s, j);
  *len = j - pos;
  return is_js_trim_space(cp);
}

// Length of the white space run starting at pos.
size_t space_run(std::string_view s, size_t pos) {
  size_t k = pos, len = 0;
  while (k < s.size() && is_space_cp(s, k, &len)) k += len;
  return k - pos;
}

// Start of the white space run ending at pos.
size_t space_run_back(std::string_view s, size_t pos) {
  size_t k = pos;
  while (k > 0) {
    size_t start = k - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t len = 0;
    if (!is_space_cp(s, start, &len)) break;
    k = start;
  }
  return k;
}

void preprocess(Source& src) {
  std::string& s = src.s;
  if (!s.empty() && s.back() == '\n') src.erase(s.size() - 1, 1);
  // lstrip_blocks: spaces / tabs between a line start and a block or comment tag go.
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != '{' || (s[i + 1] != '%' && s[i + 1] != '#' && s[i + 1] != '-')) continue;
    size_t k = i;
    while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t')) --k;
    if (k < i && (k == 0 || s[k - 1] == '\n' || s[k - 1] == '\r')) {
      src.erase(k, i - k);
      i = k;
    }
  }
  // trim_blocks: the first newline after a block or comment tag goes.
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if ((s[i] == '%' || s[i] == '#' || s[i] == '-') && s[i + 1] == '}' && s[i + 2] == '\n') src.erase(i + 2, 1);
  }
  // transformers' {% generation %} / {% endgeneration %} markers render their body as is.
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != '{' || s[i + 1] != '%') continue;
    size_t k = i + 2;
    const bool strip_before = k < s.size() && s[k] == '-';
    if (strip_before) ++k;
    while (k < s.size() && std::isspace(static_cast<unsigned char>(s[k]))) ++k;
    if (s.compare(k, 3, "end") == 0) k += 3;
    if (s.compare(k, 10, "generation") != 0) continue;
    k += 10;
    while (k < s.size() && std::isspace(static_cast<unsigned char>(s[k]))) ++k;
    const bool strip_after = k < s.size() && s[k] == '-';
    if (strip_after) ++k;
    if (s.compare(k, 2, "%}") != 0) continue;
    k += 2;
    size_t end = strip_after ? k + space_run(s, k) : k;
    size_t begin = strip_before ? space_run_back(s, i) : i;
    src.erase(begin, end - begin);
    i = begin == 0 ? 0 : begin - 1;
  }
}

class Lexer {
 public:
  Lexer(Source& src, const std::string& label) : src_(src), s_(src.s), label_(label) {}

  std::vector<Token> run() {
    while (pos_ < s_.size()) {
      if (!in_tag_) {
        text();
        continue;
      }
      tag_token();
    }
    if (in_tag_) fail(pos_, "unterminated tag");
    out_.push_back({Tok::kEnd, "", src_.line_at(pos_)});
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(size_t pos, const std::string& what) const {
    throw Error(label_ + " line " + std::to_string(src_.line_at(pos)) + ": " + what);
  }
  bool at(std::string_view t) const { return s_.compare(pos_, t.size(), t) == 0; }
  void push(Tok k, std::string text, size_t pos) { out_.push_back({k, std::move(text), src_.line_at(pos)}); }

  void strip_last_text() {
    if (out_.empty() || out_.back().kind != Tok::kText) return;
    std::string& t = out_.back().text;
    t.erase(space_run_back(t, t.size()));
    if (t.empty()) out_.pop_back();
  }

  void text() {
    const size_t start = pos_;
    while (pos_ < s_.size() && !(s_[pos_] == '{' && pos_ + 1 < s_.size() &&
                                 (s_[pos_ + 1] == '%' || s_[pos_ + 1] == '{' || s_[pos_ + 1] == '#'))) {
      ++pos_;
    }
    if (pos_ > start) push(Tok::kText, s_.substr(start, pos_ - start), start);
    if (pos_ >= s_.size()) return;
    if (at("{#")) {
      comment();
      return;
    }
    const bool stmt = s_[pos_ + 1] == '%';
    const size_t open = pos_;
    pos_ += 2;
    if (pos_ < s_.size() && s_[pos_] == '-') {
      ++pos_;
      strip_last_text();
    }
    push(stmt ? Tok::kOpenStmt : Tok::kOpenExpr, stmt ? "{%" : "{{", open);
    in_tag_ = true;
    stmt_ = stmt;
    depth_ = 0;
  }

  void comment() {
    const size_t open = pos_;
    pos_ += 2;
    if (pos_ < s_.size() && s_[pos_] == '-') strip_last_text();
    const size_t close = s_.find("#}", pos_);
    if (close == std::string::npos) fail(open, "unterminated comment");
    const bool strip_after = close > pos_ && s_[close - 1] == '-';
    pos_ = close + 2;
    if (strip_after) pos_ += space_run(s_, pos_);
  }

  void close_tag(size_t len, bool strip) {
    push(stmt_ ? Tok::kCloseStmt : Tok::kCloseExpr, stmt_ ? "%}" : "}}", pos_);
    pos_ += len;
    if (strip) pos_ += space_run(s_, pos_);
    in_tag_ = false;
  }

  void tag_token() {
    pos_ += space_run(s_, pos_);
    if (pos_ >= s_.size()) fail(pos_, "unterminated tag");
    if (stmt_ && at("-%}")) return close_tag(3, true);
    if (stmt_ && at("%}")) return close_tag(2, false);
    if (!stmt_ && depth_ == 0 && at("-}}")) return close_tag(3, true);
    if (!stmt_ && depth_ == 0 && at("}}")) return close_tag(2, false);
    const char c = s_[pos_];
    const size_t start = pos_;
    if (c == '\'' || c == '"') return string_literal(c);
    if (std::isdigit(static_cast<unsigned char>(c))) {
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      const bool after_dot = !out_.empty() && out_.back().kind == Tok::kOp && out_.back().text == ".";
      if (!after_dot && pos_ + 1 < s_.size() && s_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(s_[pos_ + 1]))) {
        ++pos_;
        while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
        return push(Tok::kFloat, s_.substr(start, pos_ - start), start);
      }
      return push(Tok::kInt, s_.substr(start, pos_ - start), start);
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
      return push(Tok::kName, s_.substr(start, pos_ - start), start);
    }
    static const char* const kOps[] = {"**", "//", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ".",
                                       ":", "|", "<", ">", "+", "-", "~", "*", "/", "%", "="};
    for (const char* op : kOps) {
      if (at(op)) {
        if (op[0] == '{' && op[1] == 0) ++depth_;
        if (op[0] == '}' && op[1] == 0) --depth_;
        pos_ += std::char_traits<char>::length(op);
        return push(Tok::kOp, op, start);
      }
    }
    fail(start, std::string("unexpected character '") + c + "'");
  }

  void string_literal(char quote) {
    const size_t start = pos_++;
    std::string v;
    while (true) {
      if (pos_ >= s_.size()) fail(start, "unterminated string literal");
      const char c = s_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        v += c;
        continue;
      }
      if (pos_ >= s_.size()) fail(start, "unterminated string literal");
      const char e = s_[pos_++];
      switch (e) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case 'v': v += '\v'; break;
        case '0': v += '\0'; break;
        case '\'': case '"': case '\\': v += e; break;
        case 'x': case 'u': {
          const size_t n = e == 'x' ? 2 : 4;
          if (pos_ + n > s_.size()) fail(start, "bad \\" + std::string(1, e) + " escape");
          char32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            const char h = s_[pos_ + k];
            if (!std::isxdigit(static_cast<unsigned char>(h))) fail(start, "bad \\" + std::string(1, e) + " escape");
            cp = cp * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (h | 0x20) - 'a' + 10);
          }
          pos_ += n;
          if (cp >= 0xD800 && cp <= 0xDFFF) fail(start, "surrogate \\u escape");
          append_utf8(v, cp);
          break;
        }
        default:
          // Python keeps unknown escapes verbatim.
          v += '\\';
          v += e;
      }
    }
    push(Tok::kString, std::move(v), start);
  }

  Source& src_;
  const std::string& s_;
  const std::string& label_;
  std::vector<Token> out_;
  size_t pos_ = 0;
  bool in_tag_ = false, stmt_ = false;
  int depth_ = 0;
};

}  // namespace

std::vector<Token> lex(std::string_view source, const std::string& label) {
  Source src;
  src.s.assign(source);
  src.line.resize(src.s.size());
  int line = 1;
  for (size_t i = 0; i < src.s.size(); ++i) {
    src.line[i] = line;
    if (src.s[i] == '\n') ++line;
  }
  if (!is_valid_utf8(src.s)) throw Error(label + ": template is not valid UTF-8");
  preprocess(src);
  return Lexer(src, label).run();
}

}  // namespace unmask::tok::jinja
