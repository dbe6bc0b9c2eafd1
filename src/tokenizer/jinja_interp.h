// tokenizer/jinja_interp.h — rendering a parsed chat template.
//
// An Interpreter renders one Program once: it owns the variable scopes of that
// render and borrows the Program. Builtins (filters, tests, methods, globals) live in
// jinja_builtins.cpp. Errors are unmask::Error naming the template line.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace unmask::tok::jinja {

class Interpreter {
 public:
  Interpreter(const Program& program, std::vector<std::pair<std::string, Value>> context);
  Str render();

  // Used by builtins that call back into the template (macros, select filters).
  Value call(const Value& fn, std::vector<Value>& args, Kwargs& kwargs, int line);
  [[noreturn]] void fail(int line, const std::string& what) const;

 private:
  using Scope = std::unordered_map<std::string, Value>;
  struct BreakSignal {};
  struct ContinueSignal {};

  void exec(const std::vector<std::unique_ptr<Stmt>>& body, Str& out);
  void exec_stmt(const Stmt& s, Str& out);
  void exec_for(const Stmt& s, Str& out);
  void assign(const Expr& target, Value v, int line);
  Value eval(const Expr& e);
  Value eval_binary(const Expr& e);
  Value lookup(const std::string& name) const;
  Value make_macro(const Stmt& s);

  const Program& program_;
  std::vector<Scope> scopes_;
  int call_depth_ = 0;
};

// jinja_builtins.cpp
Value get_attr(const Value& obj, const std::string& name, bool subscript_syntax);
Value get_item(const Value& obj, const Value& key);
Value apply_filter(Interpreter& in, const std::string& name, Value v, std::vector<Value>& args, Kwargs& kwargs, int line);
bool apply_test(Interpreter& in, const std::string& name, const Value& v, std::vector<Value>& args, int line);
void install_globals(std::unordered_map<std::string, Value>& scope);
Value slice_value(const Value& v, const Value& start, const Value& stop, const Value& step);

}  // namespace unmask::tok::jinja
