// tokenizer/added_tokens.cpp — added-token parsing and leftmost-longest matching.
#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "unmask/error.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace unmask::tok {

void AddedVocabulary::Trie::insert(std::string_view s, int32_t token) {
  if (s.empty()) return;
  first[static_cast<unsigned char>(s[0])] = true;
  int32_t node = 0;
  for (unsigned char c : s) {
    auto& next = nodes[static_cast<size_t>(node)].next;
    auto it = std::find_if(next.begin(), next.end(), [c](const auto& p) { return p.first == c; });
    if (it != next.end()) {
      node = it->second;
      continue;
    }
    const auto child = static_cast<int32_t>(nodes.size());
    nodes[static_cast<size_t>(node)].next.emplace_back(c, child);
    nodes.emplace_back();
    node = child;
  }
  // Two tokens with one spelling: the first listed wins.
  if (nodes[static_cast<size_t>(node)].token < 0) nodes[static_cast<size_t>(node)].token = token;
}

AddedVocabulary::AddedVocabulary(const nlohmann::json& list, const Normalizer* normalizer,
                                 const std::string& label) {
  if (list.is_null()) return;
  if (!list.is_array()) throw Error(label + ": added_tokens is not an array");
  bool any_single_word = false;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& e = list[i];
    const std::string where = label + ": added_tokens[" + std::to_string(i) + "]";
    if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer() || !e.contains("content") ||
        !e["content"].is_string()) {
      throw Error(where + " needs an integer \"id\" and a string \"content\"");
    }
    AddedToken t;
    const auto id = e["id"].get<int64_t>();
    if (id < 0 || id > INT32_MAX) throw Error(where + ": id " + std::to_string(id) + " out of range");
    t.id = static_cast<int32_t>(id);
    t.content = e["content"].get<std::string>();
    if (t.content.empty()) throw Error(where + ": empty content");
    if (!is_valid_utf8(t.content)) throw Error(where + ": content is not valid UTF-8");
    auto flag = [&](const char* key, bool dflt) {
      return e.contains(key) && e[key].is_boolean() ? e[key].get<bool>() : dflt;
    };
    t.special = flag("special", false);
    t.lstrip = flag("lstrip", false);
    t.rstrip = flag("rstrip", false);
    t.single_word = flag("single_word", false);
    t.normalized = flag("normalized", !t.special);
    any_single_word |= t.single_word;
    tokens_.push_back(std::move(t));
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    const bool norm = t.normalized && normalizer != nullptr;
    const std::string key = norm ? normalizer->normalize(t.content) : t.content;
    const auto idx = static_cast<int32_t>(i);
    const int base = norm ? 2 : 0;
    tries_[static_cast<size_t>(base + 1)].insert(key, idx);
    if (!t.special) tries_[static_cast<size_t>(base)].insert(key, idx);
  }
  if (any_single_word) word_char_ = std::make_unique<Regex>("^[\\p{L}\\p{N}_]", label + ": single_word");
}

AddedVocabulary::~AddedVocabulary() = default;

// Whether the character just before (before=true) or at `pos` is a word character.
bool AddedVocabulary::word_char_at(std::string_view text, size_t pos, bool before) const {
  if (before) {
    if (pos == 0) return false;
    size_t start = pos - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    pos = start;
  } else if (pos >= text.size()) {
    return false;
  }
  size_t end = pos;
  next_code_point(text, end);
  bool hit = false;
  word_char_->for_each_match(text.substr(pos, end - pos), [&](size_t, size_t) { hit = true; });
  return hit;
}

namespace {

bool overlaps(const std::vector<std::pair<size_t, size_t>>& ranges, size_t b, size_t e) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), b, [](size_t v, const auto& r) { return v < r.second; });
  return it != ranges.end() && it->first < e;
}

}  // namespace

void AddedVocabulary::split(std::string_view text, bool normalized_pass, bool parse_special, std::vector<Section>& out,
                            const std::vector<std::pair<size_t, size_t>>* untrusted) const {
  out.clear();
  const Trie& tr = trie(normalized_pass, parse_special);
  if (tr.nodes.size() == 1) {
    if (!text.empty()) out.push_back({text, -1});
    return;
  }
  size_t start = 0, i = 0;
  while (i < text.size()) {
    if (!tr.first[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < text.size(); ++j) {
      const auto& next = tr.nodes[static_cast<size_t>(node)].next;
      const auto c = static_cast<unsigned char>(text[j]);
      auto it = std::find_if(next.begin(), next.end(), [c](const auto& p) { return p.first == c; });
      if (it == next.end()) break;
      node = it->second;
      const int32_t tok = tr.nodes[static_cast<size_t>(node)].token;
      if (tok < 0) continue;
      const AddedToken& t = tokens_[static_cast<size_t>(tok)];
      if (t.single_word && (word_char_at(text, i, true) || word_char_at(text, j + 1, false))) continue;
      if (t.special && untrusted && overlaps(*untrusted, i, j + 1)) continue;
      best = tok;
      best_end = j + 1;
    }
    if (best < 0) {
      ++i;
      continue;
    }
    if (i > start) out.push_back({text.substr(start, i - start), -1});
    out.push_back({text.substr(i, best_end - i), best});
    i = start = best_end;
  }
  if (start < text.size()) out.push_back({text.substr(start), -1});
  for (size_t k = 0; k < out.size(); ++k) {
    if (out[k].token < 0) continue;
    const AddedToken& t = tokens_[static_cast<size_t>(out[k].token)];
    if (t.lstrip && k > 0 && out[k - 1].token < 0) out[k - 1].text = js_trim_end(out[k - 1].text);
    if (t.rstrip && k + 1 < out.size() && out[k + 1].token < 0) out[k + 1].text = js_trim_start(out[k + 1].text);
  }
}

}  // namespace unmask::tok
