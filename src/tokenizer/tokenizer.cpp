// tokenizer/tokenizer.cpp — loading tokenizer.json + tokenizer_config.json; encode / decode.
//
// Encoding follows the reference pipeline: split at added tokens (raw text), then per
// plain section: config clean-ups, normalizer, split at normalized added tokens,
// pre-tokenizer, BPE model; finally the post-processor.
#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include "unmask/error.h"
#include "tokenizer/json_load.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace unmask {
namespace {

using json = nlohmann::json;

// A config token value: "text", {"content": "text", ...} or null.
std::optional<std::string> config_token(const json& cfg, const char* key, const std::string& label) {
  if (!cfg.contains(key) || cfg[key].is_null()) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) {
    if (v.get<std::string>().empty()) return std::nullopt;
    return v.get<std::string>();
  }
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  throw Error(label + ": " + key + " must be a string or an AddedToken object, got " + v.dump());
}

void load_post_processor(Tokenizer::Impl& impl, const json& pp, const std::string& label) {
  if (pp.is_null()) return;
  if (!pp.is_object() || !pp.contains("type") || !pp["type"].is_string()) {
    throw Error(label + ": post_processor must be an object with a string \"type\"");
  }
  const std::string type = pp["type"].get<std::string>();
  const std::string where = label + ": post_processor " + type;
  auto lookup = [&](const std::string& token) {
    const int32_t id = impl.model->token_to_id(token);
    if (id < 0) throw Error(where + ": unknown token \"" + token + "\"");
    return id;
  };
  if (type == "Sequence") {
    for (const auto& sub : pp.value("processors", json::array())) load_post_processor(impl, sub, label);
  } else if (type == "ByteLevel") {
    // Offsets only: no tokens added.
  } else if (type == "TemplateProcessing") {
    const json& single = pp.value("single", json::array());
    if (!single.is_array()) throw Error(where + ": \"single\" is not an array");
    bool seen_sequence = false;
    for (const auto& item : single) {
      if (item.contains("Sequence")) {
        seen_sequence = true;
      } else if (item.contains("SpecialToken") && item["SpecialToken"].contains("id") &&
                 item["SpecialToken"]["id"].is_string()) {
        const std::string tok = item["SpecialToken"]["id"].get<std::string>();
        // The reference looks the name up as a token; the file's special_tokens table
        // (which may map a name to several ids) is the fallback.
        std::vector<int32_t> ids;
        const json& table = pp.value("special_tokens", json::object());
        if (const int32_t id = impl.model->token_to_id(tok); id >= 0) {
          ids.push_back(id);
        } else if (table.is_object() && table.contains(tok) && table[tok].is_object() && table[tok].contains("ids") &&
                   table[tok]["ids"].is_array()) {
          for (const auto& v : table[tok]["ids"]) {
            if (!v.is_number_integer() || !impl.model->has_id(v.get<int32_t>())) {
              throw Error(where + ": special_tokens[\"" + tok + "\"] has a bad id " + v.dump());
            }
            ids.push_back(v.get<int32_t>());
          }
        } else {
          ids.push_back(lookup(tok));
        }
        auto& dst = seen_sequence ? impl.post_suffix : impl.post_prefix;
        dst.insert(dst.end(), ids.begin(), ids.end());
      } else {
        throw Error(where + ": unsupported template item " + item.dump());
      }
    }
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto id_of = [&](const char* key) {
      const json& v = pp.value(key, json());
      if (!v.is_array() || v.size() != 2 || !v[0].is_string()) throw Error(where + ": bad \"" + key + "\"");
      return lookup(v[0].get<std::string>());
    };
    impl.post_prefix.push_back(id_of("cls"));
    impl.post_suffix.insert(impl.post_suffix.begin(), id_of("sep"));
  } else {
    throw Error(label + ": unsupported post_processor type \"" + type + "\"");
  }
}

void load_config(Tokenizer::Impl& impl, const json& cfg, const std::string& label) {
  if (!cfg.is_object()) throw Error(label + ": top level is not a JSON object");
  const bool cleanup = cfg.contains("clean_up_tokenization_spaces") && cfg["clean_up_tokenization_spaces"].is_boolean();
  impl.clean_up_spaces = cleanup ? cfg["clean_up_tokenization_spaces"].get<bool>() : true;
  impl.remove_space = cfg.value("remove_space", false) == true;
  impl.lowercase_and_remove_accent = cfg.value("do_lowercase_and_remove_accent", false) == true;

  static const char* const kRoleKeys[] = {"bos_token", "eos_token", "pad_token", "unk_token",
                                          "sep_token", "cls_token", "mask_token", "eot_token"};
  for (size_t r = 0; r < 8; ++r) impl.role_token[r] = config_token(cfg, kRoleKeys[r], label);
  const auto role = [](TokenRole r) { return static_cast<size_t>(r); };
  if (!impl.role_token[role(TokenRole::kPad)]) impl.role_token[role(TokenRole::kPad)] = impl.role_token[role(TokenRole::kEos)];
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (auto v = config_token(cfg, key, label)) impl.template_specials.emplace_back(key, *v);
  }

  // Conventional spellings for roles the config does not name (see tokenizer.h).
  auto first_special = [&](std::initializer_list<const char*> names) -> std::optional<std::string> {
    for (const char* n : names) {
      for (const auto& t : impl.added->tokens()) {
        if (t.special && t.content == n) return t.content;
      }
    }
    return std::nullopt;
  };
  if (!impl.role_token[role(TokenRole::kMask)]) {
    impl.role_token[role(TokenRole::kMask)] =
        first_special({"<|mdm_mask|>", "<|mask|>", "<mask>", "[MASK]", "<MASK>", "|<MASK>|"});
  }
  if (!impl.role_token[role(TokenRole::kEot)]) {
    auto eot = first_special({"<|eot_id|>", "<|im_end|>", "<|role_end|>", "<|end|>", "<end_of_turn>", "<|eot|>"});
    impl.role_token[role(TokenRole::kEot)] = eot ? eot : impl.role_token[role(TokenRole::kEos)];
  }
  for (size_t r = 0; r < 8; ++r) {
    if (!impl.role_token[r]) continue;
    const int32_t id = impl.model->token_to_id(*impl.role_token[r]);
    if (id >= 0) impl.role_id[r] = id;
  }

  if (cfg.contains("chat_template")) {
    const json& ct = cfg["chat_template"];
    if (ct.is_string()) {
      impl.chat_template = ct.get<std::string>();
    } else if (ct.is_array()) {
      for (const auto& e : ct) {
        if (!e.is_object() || !e.contains("name") || !e.contains("template") || !e["template"].is_string()) {
          throw Error(label + ": chat_template list entries need \"name\" and \"template\"");
        }
        if (e["name"] == "default") impl.chat_template = e["template"].get<std::string>();
      }
    } else if (!ct.is_null()) {
      throw Error(label + ": chat_template must be a string or a list of named templates");
    }
  }

  // What skip_special drops: special added tokens and additional_special_tokens, by spelling.
  using StringSet = std::unordered_set<std::string, tok::StringHash, std::equal_to<>>;
  StringSet special;
  for (const auto& t : impl.added->tokens()) {
    if (t.special) special.insert(t.content);
  }
  if (cfg.contains("additional_special_tokens") && cfg["additional_special_tokens"].is_array()) {
    for (const auto& v : cfg["additional_special_tokens"]) {
      if (v.is_string()) special.insert(v.get<std::string>());
      else if (v.is_object() && v.contains("content") && v["content"].is_string()) special.insert(v["content"].get<std::string>());
    }
  }
  StringSet added_content;
  for (const auto& t : impl.added->tokens()) added_content.insert(t.content);
  impl.id_flags.assign(static_cast<size_t>(impl.model->id_space()), 0);
  for (int32_t id = 0; id < impl.model->id_space(); ++id) {
    if (!impl.model->has_id(id)) continue;
    const std::string_view tok = impl.model->id_to_token(id);
    uint8_t f = 0;
    if (special.find(tok) != special.end()) f |= Tokenizer::Impl::kSkipSpecial;
    if (added_content.find(tok) != added_content.end()) f |= Tokenizer::Impl::kAddedContent;
    impl.id_flags[static_cast<size_t>(id)] = f;
  }
}

std::shared_ptr<Tokenizer::Impl> build(tok::TokenizerFile file, const json& cfg, const std::string& label,
                                       const std::string& cfg_label) {
  auto impl = std::make_shared<Tokenizer::Impl>();
  impl->source = label;
  const json& doc = file.doc;
  const json& model_cfg = doc.value("model", json());
  if (!model_cfg.is_object()) throw Error(label + ": missing \"model\" object");
  const std::string type = model_cfg.value("type", std::string("BPE"));
  if (type != "BPE") throw Error(label + ": unsupported model type \"" + type + "\" (only BPE)");
  impl->normalizer = tok::Normalizer::create(doc.value("normalizer", json()), label);
  impl->pre_tokenizer = tok::PreTokenizer::create(doc.value("pre_tokenizer", json()), label);
  impl->decoder = tok::Decoder::create(doc.value("decoder", json()), label);
  impl->model = std::make_unique<tok::BpeModel>(file, model_cfg, label);
  impl->added = std::make_unique<tok::AddedVocabulary>(doc.value("added_tokens", json()), impl->normalizer.get(), label);
  std::vector<std::pair<std::string, int32_t>> added;
  for (const auto& t : impl->added->tokens()) added.emplace_back(t.content, t.id);
  impl->model->set_added_tokens(added);
  load_post_processor(*impl, doc.value("post_processor", json()), label);
  load_config(*impl, cfg, cfg_label);
  return impl;
}

json parse_config(std::string_view text, const std::string& label) {
  if (text.empty()) return json::object();
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(label + ": invalid JSON: " + e.what());
  }
}

}  // namespace

void Tokenizer::Impl::check_id(int32_t id) const {
  if (id < 0 || id >= model->id_space() || !model->has_id(id)) {
    throw Error("token id " + std::to_string(id) + " is out of range [0, " + std::to_string(model->id_space()) +
                ") for " + source);
  }
}

Tokenizer Tokenizer::from_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path tj = fs::path(dir) / "tokenizer.json";
  if (!fs::exists(tj)) throw Error(dir + ": no tokenizer.json");
  const fs::path tc = fs::path(dir) / "tokenizer_config.json";
  return from_files(tj.string(), fs::exists(tc) ? tc.string() : std::string());
}

Tokenizer Tokenizer::from_files(const std::string& tokenizer_json_path, const std::string& config_path) {
  tok::TokenizerFile file = tok::load_tokenizer_file(tokenizer_json_path);
  const json cfg = config_path.empty() ? json::object() : parse_config(tok::read_text_file(config_path), config_path);
  return Tokenizer(build(std::move(file), cfg, tokenizer_json_path, config_path));
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json, const std::string& label) {
  tok::TokenizerFile file = tok::parse_tokenizer_json(tokenizer_json, label);
  const json cfg = parse_config(config_json, label + " (config)");
  return Tokenizer(build(std::move(file), cfg, label, label + " (config)"));
}

namespace {

using Ranges = std::vector<std::pair<size_t, size_t>>;

std::vector<int32_t> encode_impl(const Tokenizer::Impl& im, std::string_view input, bool parse_special,
                                 bool add_special_tokens, const Ranges* untrusted) {
  std::string repaired;
  std::string_view text = input;
  if (!tok::is_valid_utf8(text)) {
    repaired = tok::sanitize_utf8(text);
    text = repaired;
    // Repair shifts byte offsets: no special token may then come from untrusted text.
    if (untrusted && !untrusted->empty()) parse_special = false, untrusted = nullptr;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids = im.post_prefix;
  const bool byte_level = im.pre_tokenizer && im.pre_tokenizer->byte_level_output();
  tok::BpeCache cache;
  tok::Pieces pieces;
  std::vector<tok::Section> sections, subsections;
  im.added->split(text, false, parse_special, sections, untrusted);
  // Offsets of normalized text no longer match `untrusted`: there only non-special
  // added tokens are matched.
  const bool special_after_norm = parse_special && (untrusted == nullptr || untrusted->empty());
  for (size_t si = 0; si < sections.size(); ++si) {
    const tok::Section& sec = sections[si];
    if (sec.token >= 0) {
      ids.push_back(im.added->tokens()[static_cast<size_t>(sec.token)].id);
      continue;
    }
    if (sec.text.empty()) continue;
    std::string buf;
    std::string_view plain = sec.text;
    if (im.remove_space) {
      // Collapse white space runs to one space and trim (transformers.js remove_space).
      std::string collapsed;
      bool pending_space = false;
      size_t i = 0;
      const std::string_view trimmed = tok::js_trim_end(tok::js_trim_start(plain));
      while (i < trimmed.size()) {
        const size_t start = i;
        if (tok::is_js_trim_space(tok::next_code_point(trimmed, i))) {
          pending_space = true;
          continue;
        }
        if (pending_space) collapsed += ' ';
        pending_space = false;
        collapsed.append(trimmed.substr(start, i - start));
      }
      buf = std::move(collapsed);
      plain = buf;
    }
    if (im.lowercase_and_remove_accent) {
      buf = tok::strip_marks(tok::to_lower_utf8(plain));
      plain = buf;
    }
    std::string normalized;
    if (im.normalizer) {
      normalized = im.normalizer->normalize(plain);
      plain = normalized;
    }
    if (plain.empty()) continue;
    im.added->split(plain, true, special_after_norm, subsections);
    for (const tok::Section& sub : subsections) {
      if (sub.token >= 0) {
        ids.push_back(im.added->tokens()[static_cast<size_t>(sub.token)].id);
        continue;
      }
      if (sub.text.empty()) continue;
      if (im.pre_tokenizer) {
        im.pre_tokenizer->split(sub.text, static_cast<int>(si), pieces);
        for (std::string_view p : pieces.items) im.model->encode(p, byte_level, ids, cache);
      } else {
        im.model->encode(sub.text, false, ids, cache);
      }
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), im.post_suffix.begin(), im.post_suffix.end());
  return ids;
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view input, const EncodeOptions& options) const {
  return encode_impl(*impl_, input, options.parse_special, options.add_special_tokens, nullptr);
}

std::vector<int32_t> Tokenizer::encode_rendered(std::string_view text,
                                                std::span<const std::pair<size_t, size_t>> untrusted) const {
  Ranges sorted(untrusted.begin(), untrusted.end());
  std::sort(sorted.begin(), sorted.end());
  Ranges merged;  // disjoint, as the overlap search expects
  for (const auto& r : sorted) {
    if (r.second <= r.first) continue;
    if (!merged.empty() && r.first <= merged.back().second) merged.back().second = std::max(merged.back().second, r.second);
    else merged.push_back(r);
  }
  return encode_impl(*impl_, text, true, false, &merged);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  const Impl& im = *impl_;
  const bool cleanup = options.clean_up_spaces.value_or(im.clean_up_spaces);
  if (im.decoder && im.decoder->is_plain_byte_level()) {
    // Fast path, same result as the ByteLevel decoder: token bytes, repaired per run
    // between added tokens (which pass through as text).
    std::string text, bytes;
    for (int32_t id : ids) {
      im.check_id(id);
      if (options.skip_special && im.flag(id, Impl::kSkipSpecial)) continue;
      if (im.flag(id, Impl::kAddedContent)) {
        tok::append_sanitized_utf8(text, bytes);
        bytes.clear();
        text += im.model->id_to_token(id);
      } else {
        tok::append_byte_level_bytes(im.model->id_to_token(id), bytes);
      }
    }
    tok::append_sanitized_utf8(text, bytes);
    return cleanup ? tok::clean_up_tokenization(std::move(text)) : text;
  }
  std::vector<tok::DecodeToken> toks;
  toks.reserve(ids.size());
  for (int32_t id : ids) {
    im.check_id(id);
    if (options.skip_special && im.flag(id, Impl::kSkipSpecial)) continue;
    toks.push_back({std::string(im.model->id_to_token(id)), im.flag(id, Impl::kAddedContent)});
  }
  std::string text;
  if (im.decoder) {
    text = im.decoder->decode(std::move(toks));
  } else {
    for (size_t i = 0; i < toks.size(); ++i) text += (i ? " " : "") + toks[i].text;
  }
  if (cleanup) text = tok::clean_up_tokenization(std::move(text));
  return text;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const int32_t id = impl_->model->token_to_id(token);
  return id < 0 ? std::nullopt : std::optional<int32_t>(id);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  impl_->check_id(id);
  return std::string(impl_->model->id_to_token(id));
}

std::string Tokenizer::token_bytes(int32_t id) const {
  const int32_t one[] = {id};
  return decode(one, DecodeOptions{false, false});
}

std::optional<int32_t> Tokenizer::special_id(TokenRole role) const { return impl_->role_id[static_cast<size_t>(role)]; }

std::optional<std::string> Tokenizer::special_token(TokenRole role) const {
  return impl_->role_token[static_cast<size_t>(role)];
}

bool Tokenizer::is_special(int32_t id) const {
  impl_->check_id(id);
  return impl_->flag(id, Impl::kSkipSpecial);
}

int32_t Tokenizer::vocab_size() const { return impl_->model->id_space(); }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }
std::vector<std::pair<std::string, std::string>> Tokenizer::template_special_tokens() const {
  return impl_->template_specials;
}
const std::string& Tokenizer::source() const { return impl_->source; }

}  // namespace unmask
