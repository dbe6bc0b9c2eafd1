// tokenizer/json_load.cpp — a strict JSON (RFC 8259) parser specialised for
// tokenizer.json: model.vocab / model.merges go to string pools, the rest to a DOM.
#include "tokenizer/json_load.h"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>

#include "unmask/error.h"
#include "tokenizer/unicode.h"

namespace unmask::tok {
namespace {

using json = nlohmann::json;
constexpr int kMaxDepth = 256;  // deeper nesting is rejected, not recursed into

class Parser {
 public:
  Parser(std::string_view text, const std::string& label, TokenizerFile& out)
      : p_(text.data()), begin_(text.data()), end_(text.data() + text.size()), label_(label), out_(out) {}

  void run() {
    ws();
    if (!peek('{')) fail("top level is not a JSON object");
    out_.doc = object(0, Where::kTop);
    ws();
    if (p_ != end_) fail("trailing characters after the JSON value");
  }

 private:
  enum class Where { kTop, kModel, kOther };

  [[noreturn]] void fail(const std::string& what) const {
    const std::string at = p_ >= end_ ? "at the end of input" : "at byte " + std::to_string(p_ - begin_);
    throw Error(label_ + ": " + what + " (" + at + ")");
  }
  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool peek(char c) const { return p_ < end_ && *p_ == c; }
  void expect(char c) {
    ws();
    if (p_ >= end_) fail("unexpected end of input");
    if (!peek(c)) fail(std::string("expected '") + c + "'");
    ++p_;
  }

  // Appends the decoded string at p_ (which is at the opening quote) to out.
  void string_into(std::string& out) {
    ++p_;
    for (;;) {
      const char* run = p_;
      bool high = false;
      while (p_ < end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) {
        high |= static_cast<unsigned char>(*p_) >= 0x80;
        ++p_;
      }
      const std::string_view seg(run, static_cast<size_t>(p_ - run));
      if (high && !is_valid_utf8(seg)) fail("invalid UTF-8 in a string");
      out.append(seg);
      if (p_ >= end_) fail("unterminated string");
      if (*p_ == '"') {
        ++p_;
        return;
      }
      if (*p_ != '\\') fail("control character in a string");
      if (++p_ >= end_) fail("unterminated escape");
      const char e = *p_++;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          char32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u') fail("unpaired surrogate escape");
            p_ += 2;
            const char32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: fail(std::string("bad escape \\") + e);
      }
    }
  }
  char32_t hex4() {
    if (end_ - p_ < 4) fail("short \\u escape");
    char32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<char32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<char32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<char32_t>(c - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }
  std::string string_value() {
    ws();
    if (!peek('"')) fail("expected a string");
    std::string s;
    string_into(s);
    return s;
  }

  json number() {
    const char* start = p_;
    if (peek('-')) ++p_;
    if (peek('0')) {
      ++p_;
    } else {
      if (!(p_ < end_ && *p_ >= '1' && *p_ <= '9')) fail("bad number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    bool is_float = false;
    if (peek('.')) {
      is_float = true;
      ++p_;
      if (!(p_ < end_ && *p_ >= '0' && *p_ <= '9')) fail("bad number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (peek('e') || peek('E')) {
      is_float = true;
      ++p_;
      if (peek('+') || peek('-')) ++p_;
      if (!(p_ < end_ && *p_ >= '0' && *p_ <= '9')) fail("bad number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (!is_float) {
      if (*start == '-') {
        int64_t v = 0;
        if (std::from_chars(start, p_, v).ec == std::errc()) return json(v);
      } else {
        uint64_t v = 0;
        if (std::from_chars(start, p_, v).ec == std::errc()) return json(v);
      }
    }
    double d = 0;
    std::from_chars(start, p_, d);
    return json(d);
  }

  bool literal(const char* word) {
    const size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) >= n && std::memcmp(p_, word, n) == 0) {
      p_ += n;
      return true;
    }
    return false;
  }

  json value(int depth) {
    ws();
    if (p_ >= end_) fail("unexpected end of input");
    switch (*p_) {
      case '{': return object(depth + 1, Where::kOther);
      case '[': return array(depth + 1);
      case '"': {
        std::string s;
        string_into(s);
        return json(std::move(s));
      }
      case 't': if (literal("true")) return json(true); break;
      case 'f': if (literal("false")) return json(false); break;
      case 'n': if (literal("null")) return json(nullptr); break;
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) return number();
    }
    fail("unexpected character");
  }

  json object(int depth, Where where) {
    if (depth > kMaxDepth) fail("nesting too deep");
    ++p_;  // '{'
    json obj = json::object();
    ws();
    if (peek('}')) {
      ++p_;
      return obj;
    }
    for (;;) {
      std::string key = string_value();
      expect(':');
      ws();
      if (where == Where::kModel && key == "vocab" && peek('{')) {
        vocab();
      } else if (where == Where::kModel && key == "merges" && peek('[')) {
        merges();
      } else if (where == Where::kModel && key == "vocab" && peek('[')) {
        out_.has_vocab = out_.vocab_is_list = true;
        value(depth);  // Unigram list: parsed for validity, not kept
      } else if (where == Where::kTop && key == "model" && peek('{')) {
        obj[key] = object(depth + 1, Where::kModel);
      } else {
        obj[key] = value(depth);
      }
      ws();
      if (peek(',')) {
        ++p_;
        continue;
      }
      if (peek('}')) {
        ++p_;
        return obj;
      }
      fail("expected ',' or '}'");
    }
  }

  json array(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    ++p_;  // '['
    json arr = json::array();
    ws();
    if (peek(']')) {
      ++p_;
      return arr;
    }
    for (;;) {
      arr.push_back(value(depth));
      ws();
      if (peek(',')) {
        ++p_;
        continue;
      }
      if (peek(']')) {
        ++p_;
        return arr;
      }
      fail("expected ',' or ']'");
    }
  }

  void vocab() {
    out_.has_vocab = true;
    ++p_;  // '{'
    ws();
    if (peek('}')) {
      ++p_;
      return;
    }
    std::string key;
    for (;;) {
      ws();
      if (!peek('"')) fail("model.vocab: expected a token string");
      key.clear();
      string_into(key);
      expect(':');
      ws();
      const char* start = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      int64_t id = -1;
      if (p_ == start || p_ - start > 10 || std::from_chars(start, p_, id).ec != std::errc() || id > INT32_MAX ||
          (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E'))) {
        fail("model.vocab[\"" + key + "\"]: id must be a non-negative 32-bit integer");
      }
      out_.vocab_tokens.push(key);
      out_.vocab_ids.push_back(static_cast<int32_t>(id));
      ws();
      if (peek(',')) {
        ++p_;
        continue;
      }
      if (peek('}')) {
        ++p_;
        return;
      }
      fail("model.vocab: expected ',' or '}'");
    }
  }

  void merges() {
    ++p_;  // '['
    ws();
    if (peek(']')) {
      ++p_;
      return;
    }
    std::string a, b;
    for (;;) {
      ws();
      const std::string where = "model.merges[" + std::to_string(out_.merge_left.size()) + "]";
      if (peek('"')) {
        // "left right": split at the first space; text after a second space is
        // dropped, as the JavaScript reference's split(" ", 2) does.
        a.clear();
        string_into(a);
        const size_t sp = a.find(' ');
        if (sp == std::string::npos || sp == 0) fail(where + " \"" + a + "\" is not \"left right\"");
        const size_t sp2 = a.find(' ', sp + 1);
        out_.merge_left.push(std::string_view(a).substr(0, sp));
        out_.merge_right.push(std::string_view(a).substr(sp + 1, sp2 == std::string::npos ? sp2 : sp2 - sp - 1));
      } else if (peek('[')) {
        ++p_;
        ws();
        if (!peek('"')) fail(where + " must hold two strings");
        a.clear();
        string_into(a);
        ws();
        if (!peek(',')) fail(where + " must hold two strings");
        ++p_;
        ws();
        if (!peek('"')) fail(where + " must hold two strings");
        b.clear();
        string_into(b);
        ws();
        if (!peek(']')) fail(where + " must hold exactly two strings");
        ++p_;
        out_.merge_left.push(a);
        out_.merge_right.push(b);
      } else {
        fail(where + " must be \"left right\" or [\"left\", \"right\"]");
      }
      ws();
      if (peek(',')) {
        ++p_;
        continue;
      }
      if (peek(']')) {
        ++p_;
        return;
      }
      fail("model.merges: expected ',' or ']'");
    }
  }

  const char* p_;
  const char* begin_;
  const char* end_;
  const std::string& label_;
  TokenizerFile& out_;
};

}  // namespace

std::string read_text_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(path + ": cannot open");
  std::string data;
  if (std::fseek(f.get(), 0, SEEK_END) == 0) {
    const long size = std::ftell(f.get());
    if (size > 0) data.reserve(static_cast<size_t>(size));
    std::rewind(f.get());
  }
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0) data.append(buf, n);
  if (std::ferror(f.get())) throw Error(path + ": read error");
  return data;
}

TokenizerFile parse_tokenizer_json(std::string_view text, const std::string& label) {
  TokenizerFile out;
  Parser(text, label, out).run();
  return out;
}

TokenizerFile load_tokenizer_file(const std::string& path) {
  const std::string text = read_text_file(path);
  return parse_tokenizer_json(text, path);
}

}  // namespace unmask::tok
