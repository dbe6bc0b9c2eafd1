// tokenizer/chat_template.cpp — ChatTemplate and apply_chat_template: building the
// template context from a conversation, rendering, and encoding with taint.
#include "unmask/chat_template.h"

#include <nlohmann/json.hpp>

#include "unmask/error.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/unicode.h"

namespace unmask {

using tok::jinja::Str;
using tok::jinja::Value;
using ojson = nlohmann::ordered_json;

struct ChatTemplate::Impl {
  std::unique_ptr<tok::jinja::Program> program;
};

namespace {

constexpr int kMaxJsonDepth = 64;

// JSON -> template value. Strings are untrusted below conversation keys.
Value from_json(const ojson& j, bool untrusted, int depth) {
  if (depth > kMaxJsonDepth) throw Error("chat template context nests too deeply");
  switch (j.type()) {
    case ojson::value_t::null: return Value::none();
    case ojson::value_t::boolean: return Value::boolean(j.get<bool>());
    case ojson::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case ojson::value_t::number_unsigned: {
      const auto u = j.get<uint64_t>();
      return u <= static_cast<uint64_t>(INT64_MAX) ? Value::integer(static_cast<int64_t>(u))
                                                   : Value::floating(static_cast<double>(u));
    }
    case ojson::value_t::number_float: return Value::floating(j.get<double>());
    case ojson::value_t::string: {
      std::string s = tok::sanitize_utf8(j.get_ref<const std::string&>());
      return Value::string(untrusted ? Str::untrusted(std::move(s)) : Str(std::move(s)));
    }
    case ojson::value_t::array: {
      tok::jinja::List items;
      for (const auto& e : j) items.push_back(from_json(e, untrusted, depth + 1));
      return Value::new_list(std::move(items));
    }
    case ojson::value_t::object: {
      Value d = Value::new_dict();
      for (const auto& [k, v] : j.items()) d.dict->set(k, from_json(v, untrusted, depth + 1));
      return d;
    }
    default: throw Error("chat template context: unsupported JSON value");
  }
}

ojson parse_json(std::string_view text, const char* what) {
  try {
    return ojson::parse(text);
  } catch (const ojson::exception& e) {
    throw Error(std::string(what) + ": invalid JSON: " + e.what());
  }
}

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source, const std::string& label) : impl_(std::make_unique<Impl>()) {
  impl_->program = tok::jinja::parse_template(source, label);
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

ChatTemplate::Rendered ChatTemplate::render(std::string_view context_json) const {
  const ojson ctx = parse_json(context_json, "chat template context");
  if (!ctx.is_object()) throw Error("chat template context must be a JSON object");
  std::vector<std::pair<std::string, Value>> vars;
  for (const auto& [k, v] : ctx.items()) {
    const bool untrusted = k == "messages" || k == "tools" || k == "documents";
    vars.emplace_back(k, from_json(v, untrusted, 0));
  }
  tok::jinja::Interpreter interp(*impl_->program, std::move(vars));
  Str out = interp.render();
  Rendered r;
  r.text = std::move(out.s);
  for (const auto& sp : out.taint) r.untrusted.emplace_back(sp.begin, sp.end);
  return r;
}

ChatPrompt apply_chat_template_json(const Tokenizer& tokenizer, std::string_view messages_json,
                                    const ChatOptions& options) {
  const ojson messages = parse_json(messages_json, "chat messages");
  if (!messages.is_array()) throw Error("chat messages must be a JSON array of message objects");
  ChatPrompt prompt;
  if (tokenizer.chat_template().empty()) {
    // No template: the raw prompt is the contents, joined by newlines.
    for (size_t i = 0; i < messages.size(); ++i) {
      if (!messages[i].is_object() || !messages[i].contains("content") || !messages[i]["content"].is_string()) {
        throw Error("chat messages[" + std::to_string(i) + "] needs a string \"content\"");
      }
      if (i) prompt.text += "\n";
      prompt.text += tok::sanitize_utf8(messages[i]["content"].get<std::string>());
    }
    prompt.ids = tokenizer.encode(prompt.text, EncodeOptions{false, true});
    return prompt;
  }
  ojson ctx = ojson::object();
  if (!options.extra_context_json.empty()) {
    ctx = parse_json(options.extra_context_json, "chat template extra context");
    if (!ctx.is_object()) throw Error("chat template extra context must be a JSON object");
  }
  ctx["messages"] = messages;
  ctx["add_generation_prompt"] = options.add_generation_prompt;
  if (!options.tools_json.empty()) ctx["tools"] = parse_json(options.tools_json, "chat tools");
  else if (!ctx.contains("tools")) ctx["tools"] = nullptr;
  if (!ctx.contains("documents")) ctx["documents"] = nullptr;
  for (const auto& [name, value] : tokenizer.template_special_tokens()) {
    if (!ctx.contains(name)) ctx[name] = value;
  }
  const ChatTemplate tmpl(tokenizer.chat_template(), tokenizer.source() + " chat_template");
  ChatTemplate::Rendered r = tmpl.render(ctx.dump());
  prompt.templated = true;
  prompt.ids = tokenizer.encode_rendered(r.text, r.untrusted);
  prompt.text = std::move(r.text);
  return prompt;
}

ChatPrompt apply_chat_template(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                               const ChatOptions& options) {
  ojson list = ojson::array();
  for (const ChatMessage& m : messages) {
    list.push_back({{"role", tok::sanitize_utf8(m.role)}, {"content", tok::sanitize_utf8(m.content)}});
  }
  return apply_chat_template_json(tokenizer, list.dump(), options);
}

}  // namespace unmask
