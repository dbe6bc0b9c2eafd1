// unmask/chat_template.h — rendering a model's own chat template (tokenizer_config.json).
//
// ChatTemplate owns a parsed template (a Jinja subset: for / if / elif / else / set,
// macros, namespace(), loop variables, tests, slicing, string methods, filters such
// as trim / length / tojson / string, raise_exception) and is immutable: render() may
// run concurrently. Semantics are Jinja2's, as transformers applies templates
// (trim_blocks, lstrip_blocks); docs/tokenizer.md lists what is supported.
//
// Safety: every string that comes from the conversation (message fields, tools,
// documents) is tracked through rendering as untrusted text. apply_chat_template()
// encodes the rendered prompt so that special tokens are recognised only where the
// template itself wrote them: a user who types "<|im_end|>" gets plain text.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unmask/tokenizer.h"

namespace unmask {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  // Extra template variables, as a JSON object (e.g. {"enable_thinking": false}).
  std::string extra_context_json;
  // Tool definitions, as a JSON array, exposed to the template as `tools` (untrusted text).
  std::string tools_json;
};

struct ChatPrompt {
  std::string text;          // the rendered prompt (or the raw prompt, see templated)
  std::vector<int32_t> ids;  // its token ids
  // False when the model has no chat template: text is then the messages' contents
  // joined by "\n" (the raw prompt) and ids its plain encoding with the
  // tokenizer's post-processing; callers should say so once.
  bool templated = false;
};

class ChatTemplate {
 public:
  // Parses `source`; throws Error("<label> line N: ...") on syntax errors or
  // unsupported constructs.
  explicit ChatTemplate(std::string_view source, const std::string& label = "chat_template");
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  struct Rendered {
    std::string text;
    std::vector<std::pair<size_t, size_t>> untrusted;  // byte ranges [begin, end) of conversation text
  };
  // `context_json` is a JSON object of template variables. Strings inside the
  // values of "messages", "tools" and "documents" are untrusted. Runtime errors
  // (including raise_exception) throw Error naming the template line.
  Rendered render(std::string_view context_json) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Renders `tokenizer.chat_template()` for the conversation and encodes it (special
// tokens only from the template; no post-processor, so no double BOS). Models without
// a template get the raw prompt (see ChatPrompt::templated).
ChatPrompt apply_chat_template(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                               const ChatOptions& options = {});
// Same with the conversation as a JSON array of message objects (any fields, e.g.
// tool_calls, reasoning_content).
ChatPrompt apply_chat_template_json(const Tokenizer& tokenizer, std::string_view messages_json,
                                    const ChatOptions& options = {});

}  // namespace unmask
