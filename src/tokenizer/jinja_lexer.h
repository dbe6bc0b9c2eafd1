// tokenizer/jinja_lexer.h — tokens of a chat template (Jinja subset).
//
// lex() applies the whitespace rules chat templates are rendered with (trim_blocks,
// lstrip_blocks, one trailing newline dropped, `{%-` / `-%}` stripping, the
// transformers `{% generation %}` tag removed) and records each token's line in the
// original template for error messages. It owns nothing beyond the returned tokens.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace unmask::tok::jinja {

enum class Tok {
  kText,       // literal template text
  kOpenStmt,   // {%
  kCloseStmt,  // %}
  kOpenExpr,   // {{
  kCloseExpr,  // }}
  kName,
  kInt,
  kFloat,
  kString,
  kOp,         // punctuation / operator, text in `text`
  kEnd,
};

struct Token {
  Tok kind;
  std::string text;
  int line;
};

// Throws Error("<label> line N: ...") on malformed input.
std::vector<Token> lex(std::string_view source, const std::string& label);

}  // namespace unmask::tok::jinja
