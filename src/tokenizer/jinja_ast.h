// tokenizer/jinja_ast.h — syntax tree of a parsed chat template.
//
// A Program owns its whole tree (unique_ptr children). Nodes are immutable after
// parsing; rendering only reads them, so one Program can render concurrently.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace unmask::tok::jinja {

struct Expr {
  enum class Kind {
    kLiteral,  // value
    kName,     // name
    kList, kTuple, kDict,  // kids (dict: key, value, key, value, ...)
    kAttr,     // kids[0] . name
    kIndex,    // kids[0] [ kids[1] ]
    kSlice,    // kids[0] [ kids[1] : kids[2] : kids[3] ] (null kids allowed)
    kCall,     // kids[0] ( kids[1..] , kwargs )
    kFilter,   // kids[0] | name ( kids[1..], kwargs )
    kTest,     // kids[0] is [not] name ( kids[1..] )
    kUnary,    // name in {"not", "-", "+"}; kids[0]
    kBinary,   // name = operator; kids[0], kids[1]
    kTernary,  // kids[0] if kids[1] else kids[2] (kids[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;
  bool negate = false;  // kTest: `is not`
  std::vector<std::unique_ptr<Expr>> kids;
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
};

struct Stmt {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue };
  Kind kind;
  int line = 0;
  std::string text;                   // kText
  std::unique_ptr<Expr> expr;         // kOutput / kIf test / kFor iterable / kSet value
  std::unique_ptr<Expr> target;       // kSet / kSetBlock / kFor target (name, tuple or attr)
  std::unique_ptr<Expr> cond;         // kFor `if` filter
  std::vector<std::unique_ptr<Stmt>> body, orelse;  // kIf elif chains nest in orelse
  std::string name;                   // kMacro
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> params;  // kMacro (default may be null)
};

struct Program {
  std::vector<std::unique_ptr<Stmt>> body;
  std::string label;
};

// Throws Error("<label> line N: ...") for syntax errors and unsupported tags.
std::unique_ptr<Program> parse_template(std::string_view source, const std::string& label);

}  // namespace unmask::tok::jinja
