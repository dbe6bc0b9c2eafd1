// tokenizer/jinja_parser.cpp — recursive-descent parser for the chat-template subset.
//
// Precedence (low to high), as in Jinja2: ternary `if/else`, `or`, `and`, `not`,
// comparisons / `in` / `not in`, `~`, `+ -`, `* / // %`, `**`, unary `- +`, then
// filters `|` and tests `is`, then postfix `.attr`, `[index / slice]`, `(call)`.
#include <charconv>

#include "unmask/error.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_lexer.h"

namespace unmask::tok::jinja {
namespace {

using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using StmtList = std::vector<StmtPtr>;

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& label) : t_(std::move(tokens)), label_(label) {}

  StmtList run() {
    StmtList body = block({});
    if (cur().kind != Tok::kEnd) fail("unexpected {% " + peek_name(1) + " %}");
    return body;
  }

 private:
  const Token& cur() const { return t_[pos_]; }
  const Token& at(size_t k) const { return t_[std::min(pos_ + k, t_.size() - 1)]; }
  [[noreturn]] void fail(const std::string& what, int line = 0) const {
    throw Error(label_ + " line " + std::to_string(line ? line : cur().line) + ": " + what);
  }
  std::string describe(const Token& tk) const {
    switch (tk.kind) {
      case Tok::kEnd: return "end of template";
      case Tok::kCloseStmt: return "'%}'";
      case Tok::kCloseExpr: return "'}}'";
      case Tok::kText: return "template text";
      default: return "'" + tk.text + "'";
    }
  }
  bool is_op(const char* op, size_t k = 0) const { return at(k).kind == Tok::kOp && at(k).text == op; }
  bool is_name(const char* n, size_t k = 0) const { return at(k).kind == Tok::kName && at(k).text == n; }
  std::string peek_name(size_t k) const { return at(k).kind == Tok::kName ? at(k).text : describe(at(k)); }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
    ++pos_;
  }
  std::string expect_name() {
    if (cur().kind != Tok::kName) fail("expected a name, got " + describe(cur()));
    return t_[pos_++].text;
  }
  void expect_close_stmt() {
    if (cur().kind != Tok::kCloseStmt) fail("expected '%}', got " + describe(cur()));
    ++pos_;
  }
  ExprPtr node(Expr::Kind k, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line;
    return e;
  }

  // Statements up to (not including) `{% <stop> ...`; fails at end of input when stops exist.
  StmtList block(const std::vector<const char*>& stops, int opened_line = 0, const char* opener = "") {
    StmtList out;
    for (;;) {
      const Token& tk = cur();
      if (tk.kind == Tok::kEnd) {
        if (!stops.empty()) fail(std::string("missing {% ") + stops.back() + " %} for {% " + opener + " %}", opened_line);
        return out;
      }
      if (tk.kind == Tok::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->line = tk.line;
        s->text = tk.text;
        out.push_back(std::move(s));
        ++pos_;
        continue;
      }
      if (tk.kind == Tok::kOpenExpr) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->line = tk.line;
        ++pos_;
        s->expr = expression();
        if (cur().kind != Tok::kCloseExpr) fail("expected '}}', got " + describe(cur()));
        ++pos_;
        out.push_back(std::move(s));
        continue;
      }
      if (tk.kind != Tok::kOpenStmt) fail("unexpected " + describe(tk));
      const std::string name = peek_name(1);
      for (const char* stop : stops) {
        if (name == stop) return out;
      }
      out.push_back(statement());
    }
  }

  StmtPtr statement() {
    DepthGuard guard(*this);
    const int line = cur().line;
    ++pos_;  // {%
    const std::string tag = expect_name();
    auto s = std::make_unique<Stmt>();
    s->line = line;
    if (tag == "if") return if_stmt(std::move(s));
    if (tag == "for") return for_stmt(std::move(s));
    if (tag == "set") return set_stmt(std::move(s));
    if (tag == "macro") return macro_stmt(std::move(s));
    if (tag == "break" || tag == "continue") {
      s->kind = tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      expect_close_stmt();
      return s;
    }
    fail("unsupported tag {% " + tag + " %}", line);
  }

  StmtPtr if_stmt(StmtPtr s) {
    s->kind = Stmt::Kind::kIf;
    s->expr = expression();
    expect_close_stmt();
    s->body = block({"elif", "else", "endif"}, s->line, "if");
    Stmt* tail = s.get();
    for (;;) {
      ++pos_;  // {%
      const std::string tag = expect_name();
      if (tag == "endif") {
        expect_close_stmt();
        return s;
      }
      if (tag == "elif") {
        auto e = std::make_unique<Stmt>();
        e->kind = Stmt::Kind::kIf;
        e->line = cur().line;
        e->expr = expression();
        expect_close_stmt();
        e->body = block({"elif", "else", "endif"}, s->line, "if");
        Stmt* next = e.get();
        tail->orelse.push_back(std::move(e));
        tail = next;
        continue;
      }
      expect_close_stmt();  // else
      tail->orelse = block({"endif"}, s->line, "if");
    }
  }

  ExprPtr target() {
    const int line = cur().line;
    const bool paren = is_op("(");
    if (paren) ++pos_;
    auto first = node(Expr::Kind::kName, line);
    first->name = expect_name();
    if (!is_op(",")) {
      if (paren) expect_op(")");
      return first;
    }
    auto tuple = node(Expr::Kind::kTuple, line);
    tuple->kids.push_back(std::move(first));
    while (is_op(",")) {
      ++pos_;
      auto n = node(Expr::Kind::kName, cur().line);
      n->name = expect_name();
      tuple->kids.push_back(std::move(n));
    }
    if (paren) expect_op(")");
    return tuple;
  }

  StmtPtr for_stmt(StmtPtr s) {
    s->kind = Stmt::Kind::kFor;
    s->target = target();
    if (!is_name("in")) fail("expected 'in' in {% for %}, got " + describe(cur()));
    ++pos_;
    s->expr = or_expr();  // a trailing `if` filters the loop, it is no ternary
    if (is_name("if")) {
      ++pos_;
      s->cond = expression();
    }
    if (is_name("recursive")) fail("recursive loops are not supported");
    expect_close_stmt();
    s->body = block({"else", "endfor"}, s->line, "for");
    ++pos_;
    if (expect_name() == "else") {
      expect_close_stmt();
      s->orelse = block({"endfor"}, s->line, "for");
      ++pos_;
      expect_name();
    }
    expect_close_stmt();
    return s;
  }

  StmtPtr set_stmt(StmtPtr s) {
    const int line = cur().line;
    auto first = node(Expr::Kind::kName, line);
    first->name = expect_name();
    if (is_op(".")) {
      ++pos_;
      auto attr = node(Expr::Kind::kAttr, line);
      attr->kids.push_back(std::move(first));
      attr->name = expect_name();
      s->target = std::move(attr);
    } else if (is_op(",")) {
      auto tuple = node(Expr::Kind::kTuple, line);
      tuple->kids.push_back(std::move(first));
      while (is_op(",")) {
        ++pos_;
        auto n = node(Expr::Kind::kName, cur().line);
        n->name = expect_name();
        tuple->kids.push_back(std::move(n));
      }
      s->target = std::move(tuple);
    } else {
      s->target = std::move(first);
    }
    if (cur().kind == Tok::kCloseStmt) {
      ++pos_;
      s->kind = Stmt::Kind::kSetBlock;
      s->body = block({"endset"}, s->line, "set");
      ++pos_;
      expect_name();
      expect_close_stmt();
      return s;
    }
    s->kind = Stmt::Kind::kSet;
    expect_op("=");
    s->expr = expression_list();
    expect_close_stmt();
    return s;
  }

  StmtPtr macro_stmt(StmtPtr s) {
    s->kind = Stmt::Kind::kMacro;
    s->name = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      std::string p = expect_name();
      ExprPtr dflt;
      if (is_op("=")) {
        ++pos_;
        dflt = expression();
      }
      s->params.emplace_back(std::move(p), std::move(dflt));
      if (!is_op(",")) break;
      ++pos_;
    }
    expect_op(")");
    expect_close_stmt();
    s->body = block({"endmacro"}, s->line, "macro");
    ++pos_;
    expect_name();
    expect_close_stmt();
    return s;
  }

  // `a, b` (a tuple without parentheses) where a set statement allows it.
  ExprPtr expression_list() {
    ExprPtr first = expression();
    if (!is_op(",")) return first;
    auto tuple = node(Expr::Kind::kTuple, first->line);
    tuple->kids.push_back(std::move(first));
    while (is_op(",")) {
      ++pos_;
      tuple->kids.push_back(expression());
    }
    return tuple;
  }

  // Guards recursion depth so hostile templates fail cleanly instead of overflowing.
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.fail("template nests too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };
  static constexpr int kMaxDepth = 200;

  ExprPtr expression() {
    DepthGuard guard(*this);
    ExprPtr value = or_expr();
    if (!is_name("if")) return value;
    const int line = cur().line;
    ++pos_;
    auto t = node(Expr::Kind::kTernary, line);
    t->kids.push_back(std::move(value));
    t->kids.push_back(or_expr());
    if (is_name("else")) {
      ++pos_;
      t->kids.push_back(expression());
    } else {
      t->kids.push_back(nullptr);
    }
    return t;
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
    auto b = node(Expr::Kind::kBinary, line);
    b->name = op;
    b->kids.push_back(std::move(l));
    b->kids.push_back(std::move(r));
    return b;
  }

  ExprPtr or_expr() {
    ExprPtr l = and_expr();
    while (is_name("or")) {
      const int line = t_[pos_++].line;
      l = binary("or", std::move(l), and_expr(), line);
    }
    return l;
  }
  ExprPtr and_expr() {
    ExprPtr l = not_expr();
    while (is_name("and")) {
      const int line = t_[pos_++].line;
      l = binary("and", std::move(l), not_expr(), line);
    }
    return l;
  }
  ExprPtr not_expr() {
    if (!is_name("not")) return compare();
    auto u = node(Expr::Kind::kUnary, t_[pos_++].line);
    u->name = "not";
    u->kids.push_back(not_expr());
    return u;
  }
  ExprPtr compare() {
    ExprPtr l = concat();
    for (;;) {
      const int line = cur().line;
      std::string op;
      if (is_name("in")) {
        op = "in", pos_ += 1;
      } else if (is_name("not") && is_name("in", 1)) {
        op = "not in", pos_ += 2;
      } else if (cur().kind == Tok::kOp && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                            cur().text == ">" || cur().text == "<=" || cur().text == ">=")) {
        op = t_[pos_++].text;
      } else {
        return l;
      }
      l = binary(op, std::move(l), concat(), line);
    }
  }
  ExprPtr concat() {
    ExprPtr l = additive();
    while (is_op("~")) {
      const int line = t_[pos_++].line;
      l = binary("~", std::move(l), additive(), line);
    }
    return l;
  }
  ExprPtr additive() {
    ExprPtr l = multiplicative();
    while (is_op("+") || is_op("-")) {
      const Token& op = t_[pos_++];
      l = binary(op.text, std::move(l), multiplicative(), op.line);
    }
    return l;
  }
  ExprPtr multiplicative() {
    ExprPtr l = power();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& op = t_[pos_++];
      l = binary(op.text, std::move(l), power(), op.line);
    }
    return l;
  }
  ExprPtr power() {
    ExprPtr l = unary(true);
    while (is_op("**")) {
      const int line = t_[pos_++].line;
      l = binary("**", std::move(l), unary(true), line);
    }
    return l;
  }
  ExprPtr unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      auto u = node(Expr::Kind::kUnary, cur().line);
      u->name = t_[pos_++].text;
      u->kids.push_back(unary(false));
      e = std::move(u);
    } else {
      e = postfix(primary());
    }
    return with_filter ? filters_and_tests(std::move(e)) : std::move(e);
  }

  void call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (is_op("*") || is_op("**")) fail("*args / **kwargs in calls are not supported");
      if (cur().kind == Tok::kName && is_op("=", 1)) {
        std::string key = t_[pos_].text;
        pos_ += 2;
        e.kwargs.emplace_back(std::move(key), expression());
      } else {
        e.kids.push_back(expression());
      }
      if (!is_op(",")) break;
      ++pos_;
    }
    expect_op(")");
  }

  ExprPtr postfix(ExprPtr e) {
    for (;;) {
      const int line = cur().line;
      if (is_op(".")) {
        ++pos_;
        if (cur().kind == Tok::kInt) {
          auto idx = node(Expr::Kind::kIndex, line);
          idx->kids.push_back(std::move(e));
          idx->kids.push_back(primary());
          e = std::move(idx);
          continue;
        }
        auto a = node(Expr::Kind::kAttr, line);
        a->kids.push_back(std::move(e));
        a->name = expect_name();
        e = std::move(a);
      } else if (is_op("[")) {
        ++pos_;
        e = subscript(std::move(e), line);
      } else if (is_op("(")) {
        auto c = node(Expr::Kind::kCall, line);
        c->kids.push_back(std::move(e));
        call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr subscript(ExprPtr obj, int line) {
    ExprPtr parts[3];
    int n = 0;
    bool slice = false;
    for (;;) {
      if (is_op("]")) break;
      if (is_op(":")) {
        slice = true;
        ++pos_;
        if (++n > 2) fail("too many ':' in a slice");
        continue;
      }
      if (parts[n]) fail("expected ':' or ']' in a subscript");
      parts[n] = expression();
    }
    ++pos_;
    if (!slice) {
      if (!parts[0]) fail("empty subscript", line);
      auto idx = node(Expr::Kind::kIndex, line);
      idx->kids.push_back(std::move(obj));
      idx->kids.push_back(std::move(parts[0]));
      return idx;
    }
    auto s = node(Expr::Kind::kSlice, line);
    s->kids.push_back(std::move(obj));
    for (auto& p : parts) s->kids.push_back(std::move(p));
    return s;
  }

  ExprPtr filters_and_tests(ExprPtr e) {
    for (;;) {
      const int line = cur().line;
      if (is_op("|")) {
        ++pos_;
        auto f = node(Expr::Kind::kFilter, line);
        f->kids.push_back(std::move(e));
        f->name = expect_name();
        if (is_op("(")) call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        ++pos_;
        auto t = node(Expr::Kind::kTest, line);
        if (is_name("not")) {
          t->negate = true;
          ++pos_;
        }
        t->kids.push_back(std::move(e));
        t->name = expect_name();
        if (is_op("(")) {
          call_args(*t);
        } else if (cur().kind == Tok::kInt || cur().kind == Tok::kFloat || cur().kind == Tok::kString ||
                   (cur().kind == Tok::kName && !is_name("else") && !is_name("or") && !is_name("and") &&
                    !is_name("if") && !is_name("in") && !is_name("is") && !is_name("not"))) {
          t->kids.push_back(postfix(primary()));  // `x is divisibleby 3`
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  ExprPtr primary() {
    const Token& tk = cur();
    const int line = tk.line;
    switch (tk.kind) {
      case Tok::kInt: {
        ++pos_;
        int64_t v = 0;
        if (std::from_chars(tk.text.data(), tk.text.data() + tk.text.size(), v).ec != std::errc()) {
          fail("integer literal out of range: " + tk.text, line);
        }
        auto e = node(Expr::Kind::kLiteral, line);
        e->literal = Value::integer(v);
        return e;
      }
      case Tok::kFloat: {
        ++pos_;
        auto e = node(Expr::Kind::kLiteral, line);
        e->literal = Value::floating(std::stod(tk.text));
        return e;
      }
      case Tok::kString: {
        std::string s;
        while (cur().kind == Tok::kString) s += t_[pos_++].text;  // adjacent literals concatenate
        auto e = node(Expr::Kind::kLiteral, line);
        e->literal = Value::string(Str(std::move(s)));
        return e;
      }
      case Tok::kName: {
        ++pos_;
        auto e = node(Expr::Kind::kLiteral, line);
        if (tk.text == "true" || tk.text == "True") e->literal = Value::boolean(true);
        else if (tk.text == "false" || tk.text == "False") e->literal = Value::boolean(false);
        else if (tk.text == "none" || tk.text == "None") e->literal = Value::none();
        else {
          e->kind = Expr::Kind::kName;
          e->name = tk.text;
        }
        return e;
      }
      case Tok::kOp:
        if (tk.text == "(") return parenthesized();
        if (tk.text == "[") return list_literal();
        if (tk.text == "{") return dict_literal();
        break;
      default: break;
    }
    fail("unexpected " + describe(tk), line);
  }

  ExprPtr parenthesized() {
    const int line = t_[pos_++].line;
    if (is_op(")")) {
      ++pos_;
      return node(Expr::Kind::kTuple, line);
    }
    ExprPtr first = expression();
    if (!is_op(",")) {
      expect_op(")");
      return first;
    }
    auto tuple = node(Expr::Kind::kTuple, line);
    tuple->kids.push_back(std::move(first));
    while (is_op(",")) {
      ++pos_;
      if (is_op(")")) break;
      tuple->kids.push_back(expression());
    }
    expect_op(")");
    return tuple;
  }

  ExprPtr list_literal() {
    auto l = node(Expr::Kind::kList, t_[pos_++].line);
    while (!is_op("]")) {
      l->kids.push_back(expression());
      if (!is_op(",")) break;
      ++pos_;
    }
    expect_op("]");
    return l;
  }

  ExprPtr dict_literal() {
    auto d = node(Expr::Kind::kDict, t_[pos_++].line);
    while (!is_op("}")) {
      d->kids.push_back(expression());
      expect_op(":");
      d->kids.push_back(expression());
      if (!is_op(",")) break;
      ++pos_;
    }
    expect_op("}");
    return d;
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
  const std::string& label_;
  int depth_ = 0;
};

}  // namespace

std::unique_ptr<Program> parse_template(std::string_view source, const std::string& label) {
  auto prog = std::make_unique<Program>();
  prog->label = label;
  prog->body = Parser(lex(source, label), label).run();
  return prog;
}

}  // namespace unmask::tok::jinja
