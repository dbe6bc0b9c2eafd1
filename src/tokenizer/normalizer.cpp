// tokenizer/normalizer.cpp — NFC/NFD, Replace, Prepend, Strip, StripAccents, Lowercase.
#include "tokenizer/normalizer.h"

#include <clocale>
#include <cwctype>
#include <locale.h>

#include "unmask/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace unmask::tok {

struct Normalizer::Step {
  enum class Kind { kNfc, kNfd, kReplace, kPrepend, kStrip, kStripAccents, kLowercase } kind;
  std::unique_ptr<Regex> pattern;  // kReplace
  std::string content;             // kReplace replacement, kPrepend prefix
  bool left = false, right = false;  // kStrip
};

namespace {

std::string replace_all(const Regex& re, std::string_view text, const std::string& content) {
  std::string out;
  size_t last = 0;
  re.for_each_match(text, [&](size_t s, size_t e) {
    out.append(text.substr(last, s - last));
    out += content;
    last = e;
  });
  out.append(text.substr(last));
  return out;
}

}  // namespace

Normalizer::Normalizer() = default;
Normalizer::~Normalizer() = default;

std::unique_ptr<Normalizer> Normalizer::create(const nlohmann::json& cfg, const std::string& label) {
  if (cfg.is_null()) return nullptr;
  std::unique_ptr<Normalizer> n(new Normalizer());
  n->add(cfg, label);
  return n;
}

void Normalizer::add(const nlohmann::json& cfg, const std::string& label) {
  if (!cfg.is_object() || !cfg.contains("type") || !cfg["type"].is_string()) {
    throw Error(label + ": normalizer must be an object with a string \"type\"");
  }
  const std::string type = cfg["type"].get<std::string>();
  const std::string where = label + ": normalizer " + type;
  auto step = std::make_unique<Step>();
  if (type == "Sequence") {
    const auto& list = cfg.value("normalizers", nlohmann::json::array());
    if (!list.is_array()) throw Error(where + ": \"normalizers\" is not an array");
    for (const auto& sub : list) {
      if (!sub.is_null()) add(sub, label);
    }
    return;
  } else if (type == "NFC") {
    step->kind = Step::Kind::kNfc;
  } else if (type == "NFD") {
    step->kind = Step::Kind::kNfd;
  } else if (type == "Replace") {
    step->kind = Step::Kind::kReplace;
    step->pattern = make_pattern_regex(cfg.value("pattern", nlohmann::json()), where);
    step->content = cfg.value("content", std::string());
  } else if (type == "Prepend") {
    step->kind = Step::Kind::kPrepend;
    step->content = cfg.value("prepend", std::string());
  } else if (type == "Strip") {
    step->kind = Step::Kind::kStrip;
    step->left = cfg.value("strip_left", false);
    step->right = cfg.value("strip_right", false);
  } else if (type == "StripAccents") {
    step->kind = Step::Kind::kStripAccents;
  } else if (type == "Lowercase") {
    step->kind = Step::Kind::kLowercase;
  } else {
    // NFKC/NFKD need compatibility tables; BertNormalizer/Precompiled belong to
    // WordPiece/Unigram models, which this byte-level BPE tokenizer does not load.
    throw Error(label + ": unsupported normalizer type \"" + type + "\"");
  }
  steps_.push_back(std::move(step));
}

std::string Normalizer::normalize(std::string_view text) const {
  std::string cur(text);
  for (const auto& st : steps_) {
    switch (st->kind) {
      case Step::Kind::kNfc: cur = nfc(cur); break;
      case Step::Kind::kNfd: cur = nfd(cur); break;
      case Step::Kind::kReplace: cur = replace_all(*st->pattern, cur, st->content); break;
      case Step::Kind::kPrepend: cur = st->content + cur; break;
      case Step::Kind::kStrip: {
        std::string_view v = cur;
        if (st->left) v = js_trim_start(v);
        if (st->right) v = js_trim_end(v);
        cur = std::string(v);
        break;
      }
      case Step::Kind::kStripAccents: cur = strip_marks(cur); break;
      case Step::Kind::kLowercase: cur = to_lower_utf8(cur); break;
    }
  }
  return cur;
}

namespace {

// Simple (one-to-one) case mapping through a private C.UTF-8 locale, so the
// process locale stays untouched.
std::string map_case(std::string_view s, bool upper) {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      char c = static_cast<char>(b);
      if (upper && b >= 'a' && b <= 'z') c = static_cast<char>(b - 32);
      if (!upper && b >= 'A' && b <= 'Z') c = static_cast<char>(b + 32);
      out.push_back(c);
      ++i;
      continue;
    }
    const char32_t cp = next_code_point(s, i);
    char32_t m = cp;
    if (loc) {
      m = static_cast<char32_t>(upper ? towupper_l(static_cast<wint_t>(cp), loc) : towlower_l(static_cast<wint_t>(cp), loc));
    }
    // Keep the result valid UTF-8 whatever the C library returns.
    if (m > 0x10FFFF || (m >= 0xD800 && m <= 0xDFFF)) m = cp;
    append_utf8(out, m);
  }
  return out;
}

}  // namespace

std::string to_lower_utf8(std::string_view s) { return map_case(s, false); }
std::string to_upper_utf8(std::string_view s) { return map_case(s, true); }

std::string strip_marks(std::string_view s) {
  static const Regex marks("\\p{M}+", "StripAccents");
  std::string out;
  size_t last = 0;
  marks.for_each_match(s, [&](size_t a, size_t e) {
    out.append(s.substr(last, a - last));
    last = e;
  });
  out.append(s.substr(last));
  return out;
}

}  // namespace unmask::tok
