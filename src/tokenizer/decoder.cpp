// tokenizer/decoder.cpp — ByteLevel, Replace, Fuse, Strip, ByteFallback, Metaspace,
// BPEDecoder decoders (semantics of the transformers.js reference).
#include "tokenizer/decoder.h"

#include <cctype>
#include <cstdlib>

#include "unmask/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace unmask::tok {

struct Decoder::Step {
  enum class Kind { kByteLevel, kReplace, kFuse, kStrip, kByteFallback, kMetaspace, kBpe } kind;
  std::unique_ptr<Regex> pattern;
  std::string content;  // Replace content / Strip char / Metaspace replacement / BPE suffix
  int start = 0, stop = 0;
};

namespace {

std::string replace_literal_all(const std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return s;
  std::string out;
  size_t pos = 0;
  for (size_t f; (f = s.find(from, pos)) != std::string::npos; pos = f + from.size()) {
    out.append(s, pos, f - pos);
    out.append(to);
  }
  out.append(s, pos);
  return out;
}

std::vector<DecodeToken> byte_level(std::vector<DecodeToken>& tokens) {
  std::vector<DecodeToken> out;
  std::string bytes;
  auto flush = [&] {
    if (bytes.empty()) return;
    out.push_back({sanitize_utf8(bytes), false});
    bytes.clear();
  };
  bool open = false;  // a run of byte-level tokens is in progress (it may decode to "")
  for (auto& t : tokens) {
    if (t.added) {
      if (open) flush();
      open = false;
      out.push_back(std::move(t));
    } else {
      open = true;
      append_byte_level_bytes(t.text, bytes);
    }
  }
  if (open) flush();
  return out;
}

std::vector<DecodeToken> byte_fallback(std::vector<DecodeToken>& tokens) {
  std::vector<DecodeToken> out;
  std::string bytes;
  auto flush = [&] {
    if (bytes.empty()) return;
    out.push_back({sanitize_utf8(bytes), false});
    bytes.clear();
  };
  for (auto& t : tokens) {
    const std::string& s = t.text;
    if (s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>' && std::isxdigit(static_cast<unsigned char>(s[3])) &&
        std::isxdigit(static_cast<unsigned char>(s[4]))) {
      bytes.push_back(static_cast<char>(std::strtol(s.substr(3, 2).c_str(), nullptr, 16)));
      continue;
    }
    flush();
    out.push_back(std::move(t));
  }
  flush();
  return out;
}

}  // namespace

void append_byte_level_bytes(std::string_view token, std::string& out) {
  const ByteLevelTables& t = byte_level_tables();
  size_t i = 0;
  while (i < token.size()) {
    const auto b = static_cast<unsigned char>(token[i]);
    if (b < 0x80) {
      const int16_t m = t.char_to_byte[b];
      if (m >= 0) out.push_back(static_cast<char>(m));
      else out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    const size_t start = i;
    const char32_t cp = next_code_point(token, i);
    if (cp < t.char_to_byte.size() && t.char_to_byte[cp] >= 0) out.push_back(static_cast<char>(t.char_to_byte[cp]));
    else out.append(token.substr(start, i - start));
  }
}

std::string clean_up_tokenization(std::string text) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  if (text.find(' ') == std::string::npos) return text;
  for (const auto& [from, to] : kRules) {
    if (text.find(from) != std::string::npos) text = replace_literal_all(text, from, to);
  }
  return text;
}

Decoder::Decoder() = default;
Decoder::~Decoder() = default;

std::unique_ptr<Decoder> Decoder::create(const nlohmann::json& cfg, const std::string& label) {
  if (cfg.is_null()) return nullptr;
  std::unique_ptr<Decoder> d(new Decoder());
  d->add(cfg, label);
  return d;
}

void Decoder::add(const nlohmann::json& cfg, const std::string& label) {
  if (!cfg.is_object() || !cfg.contains("type") || !cfg["type"].is_string()) {
    throw Error(label + ": decoder must be an object with a string \"type\"");
  }
  const std::string type = cfg["type"].get<std::string>();
  const std::string where = label + ": decoder " + type;
  auto st = std::make_unique<Step>();
  if (type == "Sequence") {
    const auto& list = cfg.value("decoders", nlohmann::json::array());
    if (!list.is_array()) throw Error(where + ": \"decoders\" is not an array");
    for (const auto& sub : list) add(sub, label);
    return;
  } else if (type == "ByteLevel") {
    st->kind = Step::Kind::kByteLevel;
  } else if (type == "Replace") {
    st->kind = Step::Kind::kReplace;
    st->pattern = make_pattern_regex(cfg.value("pattern", nlohmann::json()), where);
    st->content = cfg.value("content", std::string());
  } else if (type == "Fuse") {
    st->kind = Step::Kind::kFuse;
  } else if (type == "Strip") {
    st->kind = Step::Kind::kStrip;
    st->content = cfg.value("content", std::string());
    st->start = cfg.value("start", 0);
    st->stop = cfg.value("stop", 0);
  } else if (type == "ByteFallback") {
    st->kind = Step::Kind::kByteFallback;
  } else if (type == "Metaspace") {
    st->kind = Step::Kind::kMetaspace;
    st->content = cfg.value("replacement", std::string("\xE2\x96\x81"));
  } else if (type == "BPEDecoder") {
    st->kind = Step::Kind::kBpe;
    st->content = cfg.value("suffix", std::string());
  } else {
    throw Error(label + ": unsupported decoder type \"" + type + "\"");
  }
  steps_.push_back(std::move(st));
}

bool Decoder::is_plain_byte_level() const {
  return steps_.size() == 1 && steps_[0]->kind == Step::Kind::kByteLevel;
}

std::string Decoder::decode(std::vector<DecodeToken> tokens) const {
  for (const auto& stp : steps_) {
    const Step& st = *stp;
    switch (st.kind) {
      case Step::Kind::kByteLevel: tokens = byte_level(tokens); break;
      case Step::Kind::kByteFallback: tokens = byte_fallback(tokens); break;
      case Step::Kind::kFuse: {
        std::string all;
        for (const auto& t : tokens) all += t.text;
        tokens.assign(1, DecodeToken{std::move(all), false});
        break;
      }
      case Step::Kind::kReplace:
        for (auto& t : tokens) {
          std::string out;
          size_t last = 0;
          st.pattern->for_each_match(t.text, [&](size_t s, size_t e) {
            out.append(t.text, last, s - last);
            out += st.content;
            last = e;
          });
          out.append(t.text, last);
          t.text = std::move(out);
        }
        break;
      case Step::Kind::kStrip:
        // Removes up to `start` leading / `stop` trailing copies of `content` (one char).
        for (auto& t : tokens) {
          std::string_view v = t.text;
          for (int k = 0; k < st.start && !st.content.empty() && v.substr(0, st.content.size()) == st.content; ++k) {
            v.remove_prefix(st.content.size());
          }
          for (int k = 0; k < st.stop && !st.content.empty() && v.size() >= st.content.size() &&
                          v.substr(v.size() - st.content.size()) == st.content;
               ++k) {
            v.remove_suffix(st.content.size());
          }
          t.text = std::string(v);
        }
        break;
      case Step::Kind::kMetaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          std::string s = replace_literal_all(tokens[i].text, st.content, " ");
          if (i == 0 && !s.empty() && s[0] == ' ') s.erase(0, 1);
          tokens[i].text = std::move(s);
        }
        break;
      case Step::Kind::kBpe:
        for (size_t i = 0; i < tokens.size(); ++i) {
          tokens[i].text = replace_literal_all(tokens[i].text, st.content, i + 1 == tokens.size() ? "" : " ");
        }
        break;
    }
  }
  std::string out;
  for (const auto& t : tokens) out += t.text;
  return out;
}

}  // namespace unmask::tok
