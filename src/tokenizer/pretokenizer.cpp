// tokenizer/pretokenizer.cpp — Split, ByteLevel, Digits, Metaspace, Punctuation,
// Whitespace, WhitespaceSplit, BertPreTokenizer, Replace, FixedLength.
//
// Semantics follow transformers.js (the reference the fixtures were made with):
// where it differs from the Rust library the comment at the step says so.
#include "tokenizer/pretokenizer.h"

#include "unmask/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace unmask::tok {

const char* const kJsSpaceClassBody =
    "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}\\x{FEFF}";

struct PreTokenizer::Step {
  enum class Kind {
    kSplit, kByteLevel, kDigits, kMetaspace, kMatchOnly, kBert, kReplace, kFixedLength
  } kind;
  enum class Behavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };
  std::unique_ptr<Regex> regex;
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
  bool map_bytes = false;         // ByteLevel whose mapping is not deferred to the model
  bool individual = false;        // Digits
  std::string replacement;        // Metaspace replacement / Replace content
  std::string prepend_scheme;     // Metaspace
  size_t length = 0;              // FixedLength
};

namespace {

using Piece = std::string_view;

// The GPT-2 split used by ByteLevel when use_regex is true (JavaScript \s).
std::string gpt2_pattern() {
  const std::string sp = kJsSpaceClassBody;
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" + sp + "\\p{L}\\p{N}]+|[" + sp +
         "]+(?![^" + sp + "])|[" + sp + "]+";
}

constexpr const char* kPunct = "\\p{P}\\x{21}-\\x{2F}\\x{3A}-\\x{40}\\x{5B}-\\x{60}\\x{7B}-\\x{7E}";

void split_regex(const PreTokenizer::Step& st, Piece text, std::vector<Piece>& out) {
  using B = PreTokenizer::Step::Behavior;
  if (st.invert) {  // keep only the (non-empty) matches
    st.regex->for_each_match(text, [&](size_t s, size_t e) {
      if (e > s) out.push_back(text.substr(s, e - s));
    });
    return;
  }
  size_t prev = 0;
  size_t pending_start = std::string_view::npos;  // Contiguous: start of the current match run
  st.regex->for_each_match(text, [&](size_t s, size_t e) {
    switch (st.behavior) {
      case B::kIsolated:
        // regex_split: text before the match, then the match; an empty match still cuts.
        if (prev < s) out.push_back(text.substr(prev, s - prev));
        if (e > s) out.push_back(text.substr(s, e - s));
        prev = e;
        break;
      case B::kRemoved:
        if (prev < s) out.push_back(text.substr(prev, s - prev));
        prev = e;
        break;
      case B::kMergedWithPrevious:  // cut after each match
        if (e > prev) out.push_back(text.substr(prev, e - prev));
        prev = std::max(prev, e);
        break;
      case B::kMergedWithNext:  // cut before each match
        if (s > prev) out.push_back(text.substr(prev, s - prev));
        prev = std::max(prev, s);
        break;
      case B::kContiguous:
        if (e == s) break;
        if (pending_start != std::string_view::npos && s == prev) {
          prev = e;  // adjacent match: extend the run
          break;
        }
        if (pending_start != std::string_view::npos) {
          out.push_back(text.substr(pending_start, prev - pending_start));
        }
        if (prev < s) out.push_back(text.substr(prev, s - prev));
        pending_start = s;
        prev = e;
        break;
    }
  });
  if (st.behavior == B::kContiguous && pending_start != std::string_view::npos) {
    out.push_back(text.substr(pending_start, prev - pending_start));
  }
  if (prev < text.size()) out.push_back(text.substr(prev));
}

void match_only(const Regex& re, Piece text, std::vector<Piece>& out) {
  re.for_each_match(text, [&](size_t s, size_t e) {
    if (e > s) out.push_back(text.substr(s, e - s));
  });
}

void split_digits(bool individual, Piece text, std::vector<Piece>& out) {
  size_t i = 0;
  while (i < text.size()) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    size_t j = i + 1;
    if (!digit || !individual) {
      while (j < text.size() && (text[j] >= '0' && text[j] <= '9') == digit) ++j;
    }
    out.push_back(text.substr(i, j - i));
    i = j;
  }
}

std::string replace_all_literal(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t f = s.find(from, pos);
    if (f == std::string_view::npos || from.empty()) break;
    out.append(s.substr(pos, f - pos));
    out.append(to);
    pos = f + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

}  // namespace

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;

std::unique_ptr<PreTokenizer> PreTokenizer::create(const nlohmann::json& cfg, const std::string& label) {
  if (cfg.is_null()) return nullptr;
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  p->add(cfg, label);
  // Defer the byte mapping of a trailing ByteLevel to the model; map earlier ones here.
  for (size_t i = 0; i < p->steps_.size(); ++i) {
    Step& st = *p->steps_[i];
    if (st.kind != Step::Kind::kByteLevel) continue;
    st.map_bytes = i + 1 != p->steps_.size();
    p->defer_byte_map_ = !st.map_bytes;
  }
  return p;
}

void PreTokenizer::add(const nlohmann::json& cfg, const std::string& label) {
  if (!cfg.is_object() || !cfg.contains("type") || !cfg["type"].is_string()) {
    throw Error(label + ": pre_tokenizer must be an object with a string \"type\"");
  }
  const std::string type = cfg["type"].get<std::string>();
  const std::string where = label + ": pre_tokenizer " + type;
  auto st = std::make_unique<Step>();
  if (type == "Sequence") {
    const auto& list = cfg.value("pretokenizers", nlohmann::json::array());
    if (!list.is_array()) throw Error(where + ": \"pretokenizers\" is not an array");
    for (const auto& sub : list) {
      if (!sub.is_null()) add(sub, label);
    }
    return;
  } else if (type == "Split") {
    st->kind = Step::Kind::kSplit;
    st->regex = make_pattern_regex(cfg.value("pattern", nlohmann::json()), where);
    st->invert = cfg.value("invert", false);
    const std::string b = cfg.value("behavior", std::string("Isolated"));
    if (b == "Isolated") st->behavior = Step::Behavior::kIsolated;
    else if (b == "Removed") st->behavior = Step::Behavior::kRemoved;
    else if (b == "MergedWithPrevious") st->behavior = Step::Behavior::kMergedWithPrevious;
    else if (b == "MergedWithNext") st->behavior = Step::Behavior::kMergedWithNext;
    else if (b == "Contiguous") st->behavior = Step::Behavior::kContiguous;
    else throw Error(where + ": unknown behavior \"" + b + "\"");
  } else if (type == "ByteLevel") {
    st->kind = Step::Kind::kByteLevel;
    st->add_prefix_space = cfg.value("add_prefix_space", false);
    if (cfg.value("use_regex", true)) st->regex = std::make_unique<Regex>(gpt2_pattern(), where);
  } else if (type == "Digits") {
    st->kind = Step::Kind::kDigits;
    st->individual = cfg.value("individual_digits", false);
  } else if (type == "Metaspace") {
    st->kind = Step::Kind::kMetaspace;
    st->replacement = cfg.value("replacement", std::string("\xE2\x96\x81"));
    st->prepend_scheme = cfg.value("prepend_scheme", std::string("always"));
  } else if (type == "Whitespace") {
    // JavaScript /\w+|[^\w\s]+/g without the u flag: ASCII word characters.
    st->kind = Step::Kind::kMatchOnly;
    st->regex = std::make_unique<Regex>(
        std::string("[A-Za-z0-9_]+|[^A-Za-z0-9_") + kJsSpaceClassBody + "]+", where);
  } else if (type == "WhitespaceSplit") {
    st->kind = Step::Kind::kMatchOnly;
    st->regex = std::make_unique<Regex>(std::string("[^") + kJsSpaceClassBody + "]+", where);
  } else if (type == "Punctuation") {
    st->kind = Step::Kind::kMatchOnly;
    st->regex = std::make_unique<Regex>(std::string("[^") + kPunct + "]+|[" + kPunct + "]+", where);
  } else if (type == "BertPreTokenizer") {
    st->kind = Step::Kind::kBert;
    st->regex = std::make_unique<Regex>(
        std::string("[^") + kJsSpaceClassBody + kPunct + "]+|[" + kPunct + "]", where);
  } else if (type == "Replace") {
    st->kind = Step::Kind::kReplace;
    st->regex = make_pattern_regex(cfg.value("pattern", nlohmann::json()), where);
    st->replacement = cfg.value("content", std::string());
  } else if (type == "FixedLength") {
    st->kind = Step::Kind::kFixedLength;
    const auto len = cfg.value("length", int64_t{5});
    if (len <= 0) throw Error(where + ": length must be positive, got " + std::to_string(len));
    st->length = static_cast<size_t>(len);
  } else {
    throw Error(label + ": unsupported pre_tokenizer type \"" + type + "\"");
  }
  steps_.push_back(std::move(st));
}

void PreTokenizer::split(std::string_view text, int section_index, Pieces& out) const {
  out.clear();
  out.items.push_back(text);
  std::vector<Piece> next;
  for (const auto& stp : steps_) {
    const Step& st = *stp;
    next.clear();
    for (Piece p : out.items) {
      switch (st.kind) {
        case Step::Kind::kSplit: split_regex(st, p, next); break;
        case Step::Kind::kMatchOnly: match_only(*st.regex, p, next); break;
        case Step::Kind::kBert: match_only(*st.regex, js_trim_end(js_trim_start(p)), next); break;
        case Step::Kind::kDigits: split_digits(st.individual, p, next); break;
        case Step::Kind::kByteLevel: {
          if (st.add_prefix_space && (p.empty() || p[0] != ' ')) p = out.keep(" " + std::string(p));
          const size_t first = next.size();
          if (st.regex) match_only(*st.regex, p, next);
          else next.push_back(p);
          if (st.map_bytes) {
            for (size_t k = first; k < next.size(); ++k) next[k] = out.keep(bytes_to_byte_level(next[k]));
          }
          break;
        }
        case Step::Kind::kMetaspace: {
          std::string s = replace_all_literal(p, " ", st.replacement);
          const bool prepend = st.prepend_scheme == "always" ||
                               (st.prepend_scheme == "first" && section_index == 0);
          if (prepend && s.compare(0, st.replacement.size(), st.replacement) != 0) s = st.replacement + s;
          next.push_back(out.keep(std::move(s)));
          break;
        }
        case Step::Kind::kReplace: {
          std::string s;
          size_t last = 0;
          st.regex->for_each_match(p, [&](size_t a, size_t e) {
            s.append(p.substr(last, a - last));
            s += st.replacement;
            last = e;
          });
          s.append(p.substr(last));
          next.push_back(out.keep(std::move(s)));
          break;
        }
        case Step::Kind::kFixedLength: {
          size_t i = 0;
          while (i < p.size()) {
            size_t j = i;
            for (size_t k = 0; k < st.length && j < p.size(); ++k) next_code_point(p, j);
            next.push_back(p.substr(i, j - i));
            i = j;
          }
          break;
        }
      }
    }
    out.items.swap(next);
  }
}

}  // namespace unmask::tok
