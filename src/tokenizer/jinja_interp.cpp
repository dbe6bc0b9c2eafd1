// tokenizer/jinja_interp.cpp — statement execution and expression evaluation.
#include "tokenizer/jinja_interp.h"

#include <cmath>
#include <stdexcept>

#include "unmask/error.h"

namespace unmask::tok::jinja {
namespace {

constexpr int kMaxCallDepth = 64;

// a (op) b on int64 with overflow reported, as Python ints never wrap silently.
template <class F>
int64_t checked(F op, int64_t a, int64_t b) {
  int64_t r = 0;
  if (op(a, b, &r)) throw std::runtime_error("integer overflow");
  return r;
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  const bool ints = a.kind != Value::Kind::kFloat && b.kind != Value::Kind::kFloat;
  const int64_t x = a.kind == Value::Kind::kBool ? a.b : a.i, y = b.kind == Value::Kind::kBool ? b.b : b.i;
  const double fx = a.as_double(), fy = b.as_double();
  const auto add = [](int64_t p, int64_t q, int64_t* r) { return __builtin_add_overflow(p, q, r); };
  const auto sub = [](int64_t p, int64_t q, int64_t* r) { return __builtin_sub_overflow(p, q, r); };
  const auto mul = [](int64_t p, int64_t q, int64_t* r) { return __builtin_mul_overflow(p, q, r); };
  if (op == "+") return ints ? Value::integer(checked(add, x, y)) : Value::floating(fx + fy);
  if (op == "-") return ints ? Value::integer(checked(sub, x, y)) : Value::floating(fx - fy);
  if (op == "*") return ints ? Value::integer(checked(mul, x, y)) : Value::floating(fx * fy);
  if (op == "/") {
    if (fy == 0) throw std::runtime_error("division by zero");
    return Value::floating(fx / fy);
  }
  if (op == "//" || op == "%") {
    if (fy == 0) throw std::runtime_error(op == "//" ? "integer division by zero" : "modulo by zero");
    if (ints) {
      if (x == INT64_MIN && y == -1) throw std::runtime_error("integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) --q, m += y;  // Python floors toward -infinity
      return Value::integer(op == "//" ? q : m);
    }
    const double q = std::floor(fx / fy);
    return Value::floating(op == "//" ? q : fx - q * fy);
  }
  if (op == "**") {
    if (ints && y >= 0) {
      int64_t acc = 1;
      for (int64_t k = 0; k < y; ++k) {
        if (__builtin_mul_overflow(acc, x, &acc)) throw std::runtime_error("integer overflow");
        if (acc == 0 || acc == 1) break;
      }
      return Value::integer(acc);
    }
    return Value::floating(std::pow(fx, fy));
  }
  throw std::runtime_error("unknown operator " + op);
}

Value repeat(const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is(Value::Kind::kString)) {
    if (static_cast<double>(seq.str.s.size()) * static_cast<double>(n) > 64e6) throw std::runtime_error("string too long");
    Str out;
    for (int64_t k = 0; k < n; ++k) out.append(seq.str);
    return Value::string(std::move(out));
  }
  if (static_cast<double>(seq.list->size()) * static_cast<double>(n) > 1e7) throw std::runtime_error("list too long");
  List out;
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
  return Value::new_list(std::move(out));
}

}  // namespace

Interpreter::Interpreter(const Program& program, std::vector<std::pair<std::string, Value>> context)
    : program_(program), scopes_(2) {
  install_globals(scopes_[0]);
  for (auto& [k, v] : context) scopes_[1][k] = std::move(v);
}

void Interpreter::fail(int line, const std::string& what) const {
  throw Error(program_.label + " line " + std::to_string(line) + ": " + what);
}

Str Interpreter::render() {
  Str out;
  try {
    exec(program_.body, out);
  } catch (const BreakSignal&) {
    fail(0, "{% break %} outside a loop");
  } catch (const ContinueSignal&) {
    fail(0, "{% continue %} outside a loop");
  }
  return out;
}

void Interpreter::exec(const std::vector<std::unique_ptr<Stmt>>& body, Str& out) {
  for (const auto& s : body) exec_stmt(*s, out);
}

void Interpreter::exec_stmt(const Stmt& s, Str& out) {
  switch (s.kind) {
    case Stmt::Kind::kText: out.append_trusted(s.text); return;
    case Stmt::Kind::kOutput: out.append(to_str(eval(*s.expr))); return;
    case Stmt::Kind::kIf: exec(eval(*s.expr).truthy() ? s.body : s.orelse, out); return;
    case Stmt::Kind::kFor: exec_for(s, out); return;
    case Stmt::Kind::kSet: assign(*s.target, eval(*s.expr), s.line); return;
    case Stmt::Kind::kSetBlock: {
      Str captured;
      exec(s.body, captured);
      assign(*s.target, Value::string(std::move(captured)), s.line);
      return;
    }
    case Stmt::Kind::kMacro: scopes_.back()[s.name] = make_macro(s); return;
    case Stmt::Kind::kBreak: throw BreakSignal{};
    case Stmt::Kind::kContinue: throw ContinueSignal{};
  }
}

void Interpreter::exec_for(const Stmt& s, Str& out) {
  const Value seq = eval(*s.expr);
  List items;
  switch (seq.kind) {
    case Value::Kind::kList: items = *seq.list; break;
    case Value::Kind::kDict:
      for (const auto& kv : seq.dict->items) items.push_back(Value::string(Str(kv.first)));
      break;
    case Value::Kind::kString: {
      const auto off = cp_offsets(seq.str.s);
      for (size_t k = 0; k + 1 < off.size(); ++k) items.push_back(Value::string(seq.str.slice(off[k], off[k + 1])));
      break;
    }
    case Value::Kind::kUndefined: break;  // iterating an undefined value yields nothing
    default: fail(s.line, std::string("cannot iterate over ") + seq.type_name());
  }
  scopes_.emplace_back();
  struct Pop {
    std::vector<Scope>& scopes;
    ~Pop() { scopes.pop_back(); }
  } pop{scopes_};
  if (s.cond) {
    List kept;
    for (Value& v : items) {
      assign(*s.target, v, s.line);
      if (eval(*s.cond).truthy()) kept.push_back(std::move(v));
    }
    items.swap(kept);
  }
  const auto n = static_cast<int64_t>(items.size());
  for (int64_t k = 0; k < n; ++k) {
    Value loop = Value::new_dict();
    Dict& d = *loop.dict;
    d.set("index", Value::integer(k + 1));
    d.set("index0", Value::integer(k));
    d.set("revindex", Value::integer(n - k));
    d.set("revindex0", Value::integer(n - k - 1));
    d.set("first", Value::boolean(k == 0));
    d.set("last", Value::boolean(k == n - 1));
    d.set("length", Value::integer(n));
    d.set("depth", Value::integer(1));
    d.set("depth0", Value::integer(0));
    d.set("previtem", k > 0 ? items[static_cast<size_t>(k - 1)] : Value::undefined("loop.previtem"));
    d.set("nextitem", k + 1 < n ? items[static_cast<size_t>(k + 1)] : Value::undefined("loop.nextitem"));
    d.set("cycle", Value::function("loop.cycle", [k](std::vector<Value>& args, Kwargs&) {
      if (args.empty()) throw std::runtime_error("loop.cycle() needs at least one argument");
      return args[static_cast<size_t>(k) % args.size()];
    }));
    scopes_.back()["loop"] = std::move(loop);
    assign(*s.target, items[static_cast<size_t>(k)], s.line);
    try {
      exec(s.body, out);
    } catch (const ContinueSignal&) {
      continue;
    } catch (const BreakSignal&) {
      break;
    }
  }
  if (n == 0) exec(s.orelse, out);
}

void Interpreter::assign(const Expr& target, Value v, int line) {
  switch (target.kind) {
    case Expr::Kind::kName: scopes_.back()[target.name] = std::move(v); return;
    case Expr::Kind::kTuple: {
      if (!v.is(Value::Kind::kList)) fail(line, std::string("cannot unpack ") + v.type_name());
      if (v.list->size() != target.kids.size()) {
        fail(line, "cannot unpack " + std::to_string(v.list->size()) + " values into " +
                       std::to_string(target.kids.size()) + " names");
      }
      for (size_t k = 0; k < target.kids.size(); ++k) assign(*target.kids[k], (*v.list)[k], line);
      return;
    }
    case Expr::Kind::kAttr: {
      Value obj = eval(*target.kids[0]);
      if (!obj.is(Value::Kind::kNamespace)) fail(line, "can only set attributes of a namespace()");
      obj.dict->set(target.name, std::move(v));
      return;
    }
    default: fail(line, "cannot assign to this expression");
  }
}

Value Interpreter::lookup(const std::string& name) const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    if (auto f = it->find(name); f != it->end()) return f->second;
  }
  return Value::undefined(name);
}

Value Interpreter::make_macro(const Stmt& s) {
  const Stmt* def = &s;
  return Value::function(s.name, [this, def](std::vector<Value>& args, Kwargs& kwargs) {
    if (args.size() > def->params.size()) {
      fail(def->line, "macro " + def->name + " takes at most " + std::to_string(def->params.size()) + " arguments");
    }
    scopes_.emplace_back();
    struct Pop {
      std::vector<Scope>& scopes;
      ~Pop() { scopes.pop_back(); }
    } pop{scopes_};
    for (size_t k = 0; k < def->params.size(); ++k) {
      const auto& [pname, dflt] = def->params[k];
      Value v = Value::undefined(pname);
      if (k < args.size()) {
        v = args[k];
      } else {
        bool found = false;
        for (auto& kw : kwargs) {
          if (kw.first == pname) v = kw.second, found = true;
        }
        if (!found && dflt) v = eval(*dflt);
      }
      scopes_.back()[pname] = std::move(v);
    }
    for (auto& kw : kwargs) {
      bool known = false;
      for (const auto& p : def->params) known |= p.first == kw.first;
      if (!known) fail(def->line, "macro " + def->name + " has no argument '" + kw.first + "'");
    }
    Str out;
    exec(def->body, out);
    return Value::string(std::move(out));
  });
}

Value Interpreter::call(const Value& fn, std::vector<Value>& args, Kwargs& kwargs, int line) {
  if (!fn.is(Value::Kind::kFunction)) {
    fail(line, fn.is(Value::Kind::kUndefined) ? "'" + fn.name + "' is undefined and cannot be called"
                                              : std::string("a ") + fn.type_name() + " is not callable");
  }
  if (++call_depth_ > kMaxCallDepth) {
    --call_depth_;
    fail(line, "calls nest too deeply");
  }
  struct Depth {
    int& d;
    ~Depth() { --d; }
  } depth{call_depth_};
  try {
    return (*fn.fn)(args, kwargs);
  } catch (const Error&) {
    throw;
  } catch (const BreakSignal&) {
    throw;
  } catch (const ContinueSignal&) {
    throw;
  } catch (const std::exception& e) {
    fail(line, fn.name + "(): " + e.what());
  }
}

Value Interpreter::eval(const Expr& e) {
  try {
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.literal;
      case Expr::Kind::kName: return lookup(e.name);
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        List items;
        for (const auto& k : e.kids) items.push_back(eval(*k));
        return Value::new_list(std::move(items));
      }
      case Expr::Kind::kDict: {
        Value d = Value::new_dict();
        for (size_t k = 0; k + 1 < e.kids.size(); k += 2) {
          Value key = eval(*e.kids[k]);
          if (!key.is(Value::Kind::kString)) fail(e.line, "dict keys must be strings");
          d.dict->set(key.str.s, eval(*e.kids[k + 1]));
        }
        return d;
      }
      case Expr::Kind::kAttr: return get_attr(eval(*e.kids[0]), e.name, false);
      case Expr::Kind::kIndex: return get_item(eval(*e.kids[0]), eval(*e.kids[1]));
      case Expr::Kind::kSlice: {
        auto opt = [&](size_t k) { return e.kids[k] ? eval(*e.kids[k]) : Value::none(); };
        return slice_value(eval(*e.kids[0]), opt(1), opt(2), opt(3));
      }
      case Expr::Kind::kCall: {
        const Value fn = eval(*e.kids[0]);
        std::vector<Value> args;
        for (size_t k = 1; k < e.kids.size(); ++k) args.push_back(eval(*e.kids[k]));
        Kwargs kwargs;
        for (const auto& [key, val] : e.kwargs) kwargs.emplace_back(key, eval(*val));
        return call(fn, args, kwargs, e.line);
      }
      case Expr::Kind::kFilter: {
        Value v = eval(*e.kids[0]);
        std::vector<Value> args;
        for (size_t k = 1; k < e.kids.size(); ++k) args.push_back(eval(*e.kids[k]));
        Kwargs kwargs;
        for (const auto& [key, val] : e.kwargs) kwargs.emplace_back(key, eval(*val));
        return apply_filter(*this, e.name, std::move(v), args, kwargs, e.line);
      }
      case Expr::Kind::kTest: {
        const Value v = eval(*e.kids[0]);
        std::vector<Value> args;
        for (size_t k = 1; k < e.kids.size(); ++k) args.push_back(eval(*e.kids[k]));
        return Value::boolean(apply_test(*this, e.name, v, args, e.line) != e.negate);
      }
      case Expr::Kind::kUnary: {
        const Value v = eval(*e.kids[0]);
        if (e.name == "not") return Value::boolean(!v.truthy());
        if (!v.is_number()) fail(e.line, "unary " + e.name + " needs a number, got " + v.type_name());
        if (e.name == "+") return v.kind == Value::Kind::kBool ? Value::integer(v.b) : v;
        if (v.kind == Value::Kind::kFloat) return Value::floating(-v.f);
        const int64_t x = v.kind == Value::Kind::kBool ? v.b : v.i;
        if (x == INT64_MIN) fail(e.line, "integer overflow");
        return Value::integer(-x);
      }
      case Expr::Kind::kBinary: return eval_binary(e);
      case Expr::Kind::kTernary:
        if (eval(*e.kids[1]).truthy()) return eval(*e.kids[0]);
        return e.kids[2] ? eval(*e.kids[2]) : Value::undefined();
    }
  } catch (const Error&) {
    throw;
  } catch (const BreakSignal&) {
    throw;
  } catch (const ContinueSignal&) {
    throw;
  } catch (const std::exception& ex) {
    fail(e.line, ex.what());
  }
  fail(e.line, "unknown expression");
}

Value Interpreter::eval_binary(const Expr& e) {
  using K = Value::Kind;
  const std::string& op = e.name;
  Value a = eval(*e.kids[0]);
  if (op == "and") return a.truthy() ? eval(*e.kids[1]) : a;
  if (op == "or") return a.truthy() ? a : eval(*e.kids[1]);
  Value b = eval(*e.kids[1]);
  if (op == "==") return Value::boolean(equals(a, b));
  if (op == "!=") return Value::boolean(!equals(a, b));
  if (op == "<") return Value::boolean(compare(a, b, true) < 0);
  if (op == ">") return Value::boolean(compare(a, b, true) > 0);
  if (op == "<=") return Value::boolean(compare(a, b, true) <= 0);
  if (op == ">=") return Value::boolean(compare(a, b, true) >= 0);
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.is(K::kString)) {
      if (!a.is(K::kString)) fail(e.line, std::string("'in <string>' needs a string on the left, got ") + a.type_name());
      found = b.str.s.find(a.str.s) != std::string::npos;
    } else if (b.is(K::kList)) {
      for (const Value& x : *b.list) found = found || equals(a, x);
    } else if (b.is(K::kDict) || b.is(K::kNamespace)) {
      found = a.is(K::kString) && b.dict->find(a.str.s) != nullptr;
    } else if (!b.is(K::kUndefined)) {
      fail(e.line, std::string("'in' needs a string, list or dict on the right, got ") + b.type_name());
    }
    return Value::boolean(found == (op == "in"));
  }
  if (op == "~") {
    Str s = to_str(a);
    s.append(to_str(b));
    return Value::string(std::move(s));
  }
  if (op == "+") {
    if (a.is(K::kList) && b.is(K::kList)) {
      List out = *a.list;
      out.insert(out.end(), b.list->begin(), b.list->end());
      return Value::new_list(std::move(out));
    }
    if (a.is(K::kString) || b.is(K::kString)) {
      // Strings concatenate; a non-string operand is converted (lenient, as transformers.js).
      if (a.is(K::kUndefined) || b.is(K::kUndefined)) {
        fail(e.line, "cannot add an undefined value ('" + (a.is(K::kUndefined) ? a.name : b.name) + "') to a string");
      }
      Str s = to_str(a);
      s.append(to_str(b));
      return Value::string(std::move(s));
    }
  }
  if (op == "*" && (a.is(K::kString) || a.is(K::kList)) && b.is(K::kInt)) return repeat(a, b.i);
  if (op == "*" && (b.is(K::kString) || b.is(K::kList)) && a.is(K::kInt)) return repeat(b, a.i);
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b);
  fail(e.line, "unsupported operand types for " + op + ": " + a.type_name() + " and " + b.type_name());
}

}  // namespace unmask::tok::jinja
