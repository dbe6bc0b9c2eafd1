// tokenizer/jinja_value.h — runtime values of the chat-template (Jinja subset) engine.
//
// Values follow Python / Jinja2 semantics (truthiness, equality, printing, slicing by
// code points). Lists, dicts and namespaces have reference semantics (shared_ptr), as
// in Python. Strings carry "taint": byte ranges that came from untrusted input (message
// content), so the encoder can refuse to turn that text into special tokens.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unmask::tok::jinja {

struct Span {
  uint32_t begin, end;
};

// A string plus the sorted, disjoint byte ranges of it that are untrusted.
struct Str {
  std::string s;
  std::vector<Span> taint;

  Str() = default;
  Str(std::string text) : s(std::move(text)) {}  // NOLINT: implicit on purpose (trusted text)
  static Str untrusted(std::string text);

  void append(const Str& o);
  void append_trusted(std::string_view t) { s.append(t); }
  Str slice(size_t begin, size_t end) const;  // byte range; taint clipped
  bool tainted() const { return !taint.empty(); }
  // Result of an operation that may move bytes around: all of it untrusted if any was.
  Str derived(std::string text) const;
};

struct Value;
using List = std::vector<Value>;
struct Dict {
  std::vector<std::pair<std::string, Value>> items;  // insertion order, like Python dicts
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(const std::string& key, Value v);
};

class Interpreter;
// Builtin callables: positional args, keyword args (in order).
using Kwargs = std::vector<std::pair<std::string, Value>>;
using NativeFn = std::function<Value(std::vector<Value>& args, Kwargs& kwargs)>;

struct Value {
  enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kFunction };
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  Str str;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // kDict and kNamespace
  std::shared_ptr<NativeFn> fn;
  std::string name;  // undefined: the name looked up (for messages); function: its name

  static Value undefined(std::string n = {}) {
    Value v;
    v.name = std::move(n);
    return v;
  }
  static Value none() { return make(Kind::kNone); }
  static Value boolean(bool x) {
    Value v = make(Kind::kBool);
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v = make(Kind::kInt);
    v.i = x;
    return v;
  }
  static Value floating(double x) {
    Value v = make(Kind::kFloat);
    v.f = x;
    return v;
  }
  static Value string(Str s) {
    Value v = make(Kind::kString);
    v.str = std::move(s);
    return v;
  }
  static Value new_list(List items = {}) {
    Value v = make(Kind::kList);
    v.list = std::make_shared<List>(std::move(items));
    return v;
  }
  static Value new_dict() {
    Value v = make(Kind::kDict);
    v.dict = std::make_shared<Dict>();
    return v;
  }
  static Value new_namespace() {
    Value v = make(Kind::kNamespace);
    v.dict = std::make_shared<Dict>();
    return v;
  }
  static Value function(std::string n, NativeFn fn) {
    Value v = make(Kind::kFunction);
    v.name = std::move(n);
    v.fn = std::make_shared<NativeFn>(std::move(fn));
    return v;
  }

  bool is(Kind k) const { return kind == k; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool; }
  double as_double() const { return kind == Kind::kFloat ? f : kind == Kind::kBool ? (b ? 1 : 0) : static_cast<double>(i); }
  bool truthy() const;
  const char* type_name() const;

 private:
  static Value make(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
};

// Python str() of a value (what {{ }} prints); strings keep their taint.
Str to_str(const Value& v);
// Python repr() (used inside printed lists / dicts).
std::string repr(const Value& v);
// JSON text like transformers' tojson (json.dumps, ensure_ascii=False). indent < 0: inline.
std::string to_json(const Value& v, int indent, bool sort_keys);
bool any_taint(const Value& v);
bool equals(const Value& a, const Value& b);
// Three-way compare for sorting / < >; throws std::runtime_error on incomparable types.
int compare(const Value& a, const Value& b, bool case_sensitive);
std::string format_float(double d);

// Code-point helpers on UTF-8 strings.
size_t cp_length(std::string_view s);
std::vector<size_t> cp_offsets(std::string_view s);  // byte offset of each code point, plus the end

}  // namespace unmask::tok::jinja
