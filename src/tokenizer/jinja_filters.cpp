// tokenizer/jinja_filters.cpp — the `|filter` functions of the chat-template engine
// (Jinja2 builtins that chat templates use, plus transformers' tojson).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tokenizer/jinja_builtins_util.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/normalizer.h"

namespace unmask::tok::jinja {
namespace {

using K = Value::Kind;

int64_t length_of(const Value& v) {
  switch (v.kind) {
    case K::kString: return static_cast<int64_t>(cp_length(v.str.s));
    case K::kList: return static_cast<int64_t>(v.list->size());
    case K::kDict:
    case K::kNamespace: return static_cast<int64_t>(v.dict->items.size());
    case K::kUndefined: return 0;
    default: throw std::runtime_error(std::string("object of type ") + v.type_name() + " has no length");
  }
}

List as_list(const Value& v) {
  switch (v.kind) {
    case K::kList: return *v.list;
    case K::kDict: {
      List keys;
      for (const auto& kv : v.dict->items) keys.push_back(Value::string(Str(kv.first)));
      return keys;
    }
    case K::kString: {
      List chars;
      const auto off = cp_offsets(v.str.s);
      for (size_t k = 0; k + 1 < off.size(); ++k) chars.push_back(Value::string(v.str.slice(off[k], off[k + 1])));
      return chars;
    }
    case K::kUndefined: return {};
    default: throw std::runtime_error(std::string(v.type_name()) + " is not iterable");
  }
}

// `attribute` arguments may be dotted paths ("a.b") or integer indices.
Value attribute_of(const Value& item, const Value& attr) {
  if (attr.is(K::kInt)) return get_item(item, attr);
  const std::string path = need_str(attr, "attribute").s;
  Value cur = item;
  size_t start = 0;
  for (;;) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = numeric ? get_item(cur, Value::integer(std::stoll(part))) : get_item(cur, Value::string(Str(part)));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

Str html_escape(const Str& s) {
  std::string out;
  for (char c : s.s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return s.derived(out);
}

Str indent_text(const Str& s, const Value& width, bool first, bool blank) {
  const std::string pad = width.is(K::kString) ? width.str.s : std::string(static_cast<size_t>(width.is(K::kInt) ? std::max<int64_t>(0, width.i) : 4), ' ');
  Str out;
  size_t start = 0;
  bool first_line = true;
  while (start <= s.s.size()) {
    size_t nl = s.s.find('\n', start);
    const size_t end = nl == std::string::npos ? s.s.size() : nl;
    const Str line = s.slice(start, end);
    const bool empty = line.s.find_first_not_of(" \t\r") == std::string::npos;
    if ((!first_line || first) && (blank || !empty)) out.append_trusted(pad);
    out.append(line);
    if (nl == std::string::npos) break;
    out.append(s.slice(nl, nl + 1));
    start = nl + 1;
    first_line = false;
  }
  return out;
}

}  // namespace

Value apply_filter(Interpreter& in, const std::string& name, Value v, std::vector<Value>& args, Kwargs& kw, int line) {
  auto str_of = [&]() -> const Str& { return need_str(v, ("filter " + name).c_str()); };
  if (name == "safe") return v;
  if (name == "string") return v.is(K::kString) ? v : Value::string(to_str(v));
  if (name == "trim") return Value::string(py_strip(str_of(), arg_or(args, kw, 0, "chars", Value::none()), true, true));
  if (name == "length" || name == "count") return Value::integer(length_of(v));
  if (name == "upper") return Value::string(case_map(str_of(), to_upper_utf8(str_of().s)));
  if (name == "lower") return Value::string(case_map(str_of(), to_lower_utf8(str_of().s)));
  if (name == "title") return Value::string(case_map(str_of(), title_case(str_of().s)));
  if (name == "capitalize") return Value::string(case_map(str_of(), capitalize(str_of().s)));
  if (name == "e" || name == "escape") return Value::string(html_escape(v.is(K::kString) ? v.str : to_str(v)));
  if (name == "replace") {
    if (args.size() < 2) in.fail(line, "replace needs two arguments");
    const Value c = arg_or(args, kw, 2, "count", Value::integer(-1));
    return py_replace(str_of(), need_str(args[0], "replace"), need_str(args[1], "replace"), c.is(K::kInt) ? c.i : -1);
  }
  if (name == "indent") {
    const Value first = arg_or(args, kw, 1, "first", Value::boolean(false));
    const Value blank = arg_or(args, kw, 2, "blank", Value::boolean(false));
    return Value::string(indent_text(str_of(), arg_or(args, kw, 0, "width", Value::integer(4)), first.truthy(), blank.truthy()));
  }
  if (name == "tojson") {
    const Value indent = arg_or(args, kw, 0, "indent", Value::none());
    const Value sort = arg_or(args, kw, 1, "sort_keys", Value::boolean(false));
    const std::string j = to_json(v, indent.is(K::kInt) ? static_cast<int>(std::clamp<int64_t>(indent.i, 0, 64)) : -1, sort.truthy());
    return Value::string(any_taint(v) ? Str::untrusted(j) : Str(j));
  }
  if (name == "default" || name == "d") {
    const Value dflt = arg_or(args, kw, 0, "default_value", Value::string(Str()));
    const bool boolean = arg_or(args, kw, 1, "boolean", Value::boolean(false)).truthy();
    if (v.is(K::kUndefined) || (boolean && !v.truthy())) return dflt;
    return v;
  }
  if (name == "first" || name == "last") {
    const List items = as_list(v);
    if (items.empty()) return Value::undefined();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value::new_list(as_list(v));
  if (name == "reverse") {
    if (v.is(K::kString)) return slice_value(v, Value::none(), Value::none(), Value::integer(-1));
    List items = as_list(v);
    std::reverse(items.begin(), items.end());
    return Value::new_list(std::move(items));
  }
  if (name == "join") {
    const Value sep = arg_or(args, kw, 0, "d", Value::string(Str()));
    const Value attr = arg_or(args, kw, 1, "attribute", Value::none());
    Str out;
    const List items = as_list(v);
    for (size_t k = 0; k < items.size(); ++k) {
      if (k) out.append(to_str(sep));
      out.append(to_str(attr.is(K::kNone) ? items[k] : attribute_of(items[k], attr)));
    }
    return Value::string(std::move(out));
  }
  if (name == "int") {
    const Value dflt = arg_or(args, kw, 0, "default", Value::integer(0));
    if (v.is(K::kInt)) return v;
    if (v.is(K::kBool)) return Value::integer(v.b);
    if (v.is(K::kFloat) && std::isfinite(v.f) && std::fabs(v.f) < 9e18) return Value::integer(static_cast<int64_t>(v.f));
    if (v.is(K::kString)) {
      try {
        size_t used = 0;
        const std::string t = py_strip(v.str, Value::none(), true, true).s;
        const long long x = std::stoll(t, &used);
        if (used == t.size()) return Value::integer(x);
      } catch (const std::exception&) {
      }
    }
    return dflt;
  }
  if (name == "float") {
    const Value dflt = arg_or(args, kw, 0, "default", Value::floating(0));
    if (v.is_number()) return Value::floating(v.as_double());
    if (v.is(K::kString)) {
      try {
        size_t used = 0;
        const std::string t = py_strip(v.str, Value::none(), true, true).s;
        const double x = std::stod(t, &used);
        if (used == t.size()) return Value::floating(x);
      } catch (const std::exception&) {
      }
    }
    return dflt;
  }
  if (name == "abs") {
    if (v.is(K::kFloat)) return Value::floating(std::fabs(v.f));
    if (v.is(K::kInt) && v.i != INT64_MIN) return Value::integer(v.i < 0 ? -v.i : v.i);
    in.fail(line, std::string("abs needs a number, got ") + v.type_name());
  }
  if (name == "round") {
    const Value prec = arg_or(args, kw, 0, "precision", Value::integer(0));
    const Value method = arg_or(args, kw, 1, "method", Value::string(Str("common")));
    const double scale = std::pow(10.0, static_cast<double>(prec.is(K::kInt) ? prec.i : 0));
    const double x = v.as_double() * scale;
    const std::string m = method.is(K::kString) ? method.str.s : "common";
    const double r = m == "floor" ? std::floor(x) : m == "ceil" ? std::ceil(x) : std::round(x);
    return Value::floating(r / scale);
  }
  if (name == "items") {
    if (!v.is(K::kDict)) in.fail(line, std::string("items needs a dict, got ") + v.type_name());
    List out;
    for (const auto& kv : v.dict->items) out.push_back(Value::new_list({Value::string(Str(kv.first)), kv.second}));
    return Value::new_list(std::move(out));
  }
  if (name == "dictsort") {
    if (!v.is(K::kDict)) in.fail(line, std::string("dictsort needs a dict, got ") + v.type_name());
    const bool cs = arg_or(args, kw, 0, "case_sensitive", Value::boolean(false)).truthy();
    const Value by = arg_or(args, kw, 1, "by", Value::string(Str("key")));
    const bool rev = arg_or(args, kw, 2, "reverse", Value::boolean(false)).truthy();
    List out;
    for (const auto& kv : v.dict->items) out.push_back(Value::new_list({Value::string(Str(kv.first)), kv.second}));
    const size_t idx = by.is(K::kString) && by.str.s == "value" ? 1 : 0;
    std::stable_sort(out.begin(), out.end(), [&](const Value& a, const Value& b) {
      const int c = compare((*a.list)[idx], (*b.list)[idx], cs);
      return rev ? c > 0 : c < 0;
    });
    return Value::new_list(std::move(out));
  }
  if (name == "sort") {
    const bool rev = arg_or(args, kw, 0, "reverse", Value::boolean(false)).truthy();
    const bool cs = arg_or(args, kw, 1, "case_sensitive", Value::boolean(false)).truthy();
    const Value attr = arg_or(args, kw, 2, "attribute", Value::none());
    List items = as_list(v);
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      const Value& x = attr.is(K::kNone) ? a : attribute_of(a, attr);
      const Value& y = attr.is(K::kNone) ? b : attribute_of(b, attr);
      const int c = compare(x, y, cs);
      return rev ? c > 0 : c < 0;
    });
    return Value::new_list(std::move(items));
  }
  if (name == "unique") {
    List out;
    for (const Value& x : as_list(v)) {
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equals(x, y); })) out.push_back(x);
    }
    return Value::new_list(std::move(out));
  }
  if (name == "min" || name == "max") {
    const List items = as_list(v);
    if (items.empty()) return Value::undefined();
    const Value* best = &items[0];
    for (const Value& x : items) {
      const int c = compare(x, *best, false);
      if (name == "min" ? c < 0 : c > 0) best = &x;
    }
    return *best;
  }
  if (name == "sum") {
    const Value attr = arg_or(args, kw, 0, "attribute", Value::none());
    Value acc = arg_or(args, kw, 1, "start", Value::integer(0));
    for (const Value& x : as_list(v)) {
      const Value item = attr.is(K::kNone) ? x : attribute_of(x, attr);
      if (!item.is_number() || !acc.is_number()) in.fail(line, "sum needs numbers");
      acc = acc.is(K::kFloat) || item.is(K::kFloat) ? Value::floating(acc.as_double() + item.as_double())
                                                   : Value::integer(acc.i + (item.is(K::kBool) ? item.b : item.i));
    }
    return acc;
  }
  if (name == "wordcount") {
    return Value::integer(static_cast<int64_t>(py_split(str_of(), Value::none(), -1).list->size()));
  }
  if (name == "map") {
    const Value attr = arg_or(args, kw, 99, "attribute", Value::none());
    List out;
    for (const Value& x : as_list(v)) {
      if (!attr.is(K::kNone)) {
        Value r = attribute_of(x, attr);
        if (r.is(K::kUndefined)) r = arg_or(args, kw, 99, "default", r);
        out.push_back(std::move(r));
        continue;
      }
      if (args.empty() || !args[0].is(K::kString)) in.fail(line, "map needs a filter name or attribute=");
      std::vector<Value> rest(args.begin() + 1, args.end());
      Kwargs none;
      out.push_back(apply_filter(in, args[0].str.s, x, rest, none, line));
    }
    return Value::new_list(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep_if = name == "select" || name == "selectattr";
    size_t k = 0;
    Value attr;
    if (by_attr) {
      if (args.empty()) in.fail(line, name + " needs an attribute name");
      attr = args[k++];
    }
    std::string test = k < args.size() ? need_str(args[k++], name.c_str()).s : std::string();
    std::vector<Value> targs(args.begin() + static_cast<std::ptrdiff_t>(std::min(k, args.size())), args.end());
    List out;
    for (const Value& x : as_list(v)) {
      const Value subject = by_attr ? attribute_of(x, attr) : x;
      const bool pass = test.empty() ? subject.truthy() : apply_test(in, test, subject, targs, line);
      if (pass == keep_if) out.push_back(x);
    }
    return Value::new_list(std::move(out));
  }
  if (name == "attr") return get_attr(v, need_str(arg_or(args, kw, 0, "name", Value::none()), "attr").s, false);
  in.fail(line, "unknown filter '" + name + "'");
}

}  // namespace unmask::tok::jinja
