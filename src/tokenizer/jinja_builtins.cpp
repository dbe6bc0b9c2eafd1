// tokenizer/jinja_builtins.cpp — attribute / item access, slicing, string and dict
// methods, tests and global functions of the chat-template engine (Python semantics).
#include <chrono>
#include <ctime>
#include <stdexcept>

#include "unmask/error.h"
#include "tokenizer/jinja_builtins_util.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace unmask::tok::jinja {

bool py_is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

Value arg_or(std::vector<Value>& args, Kwargs& kwargs, size_t index, const char* name, Value dflt) {
  if (index < args.size()) return args[index];
  for (auto& kv : kwargs) {
    if (kv.first == name) return kv.second;
  }
  return dflt;
}

const Str& need_str(const Value& v, const char* what) {
  if (!v.is(Value::Kind::kString)) throw std::runtime_error(std::string(what) + " needs a string, got " + v.type_name());
  return v.str;
}

Str py_strip(const Str& s, const Value& chars, bool left, bool right) {
  std::vector<char32_t> set;
  const bool custom = chars.is(Value::Kind::kString);
  if (custom) {
    size_t i = 0;
    while (i < chars.str.s.size()) set.push_back(next_code_point(chars.str.s, i));
  }
  auto strippable = [&](char32_t c) {
    if (!custom) return py_is_space(c);
    for (char32_t x : set) {
      if (x == c) return true;
    }
    return false;
  };
  const std::string& t = s.s;
  size_t b = 0, e = t.size();
  if (left) {
    while (b < e) {
      size_t j = b;
      if (!strippable(next_code_point(t, j))) break;
      b = j;
    }
  }
  if (right) {
    while (e > b) {
      size_t start = e - 1;
      while (start > b && (static_cast<unsigned char>(t[start]) & 0xC0) == 0x80) --start;
      size_t j = start;
      if (!strippable(next_code_point(t, j))) break;
      e = start;
    }
  }
  return s.slice(b, e);
}

Value py_split(const Str& s, const Value& sep, int64_t maxsplit) {
  List parts;
  const std::string& t = s.s;
  if (sep.is(Value::Kind::kNone) || sep.is(Value::Kind::kUndefined)) {
    // Runs of white space separate; no empty strings at the ends.
    size_t i = 0;
    auto skip_space = [&](size_t k) {
      while (k < t.size()) {
        size_t j = k;
        if (!py_is_space(next_code_point(t, j))) break;
        k = j;
      }
      return k;
    };
    i = skip_space(i);
    while (i < t.size()) {
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        size_t e = t.size();
        parts.push_back(Value::string(s.slice(i, e)));
        return Value::new_list(std::move(parts));
      }
      size_t j = i;
      while (j < t.size()) {
        size_t k = j;
        if (py_is_space(next_code_point(t, k))) break;
        j = k;
      }
      parts.push_back(Value::string(s.slice(i, j)));
      i = skip_space(j);
    }
    return Value::new_list(std::move(parts));
  }
  const std::string& d = need_str(sep, "split()").s;
  if (d.empty()) throw std::runtime_error("split(): empty separator");
  size_t start = 0;
  for (;;) {
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) break;
    const size_t f = t.find(d, start);
    if (f == std::string::npos) break;
    parts.push_back(Value::string(s.slice(start, f)));
    start = f + d.size();
  }
  parts.push_back(Value::string(s.slice(start, t.size())));
  return Value::new_list(std::move(parts));
}

Value py_replace(const Str& s, const Str& from, const Str& to, int64_t count) {
  Str out;
  const std::string& t = s.s;
  if (from.s.empty()) {
    const auto off = cp_offsets(t);
    int64_t done = 0;
    for (size_t k = 0; k + 1 < off.size(); ++k) {
      if (count < 0 || done < count) out.append(to), ++done;
      out.append(s.slice(off[k], off[k + 1]));
    }
    if (count < 0 || done < count) out.append(to);
    return Value::string(std::move(out));
  }
  size_t pos = 0;
  int64_t done = 0;
  for (;;) {
    if (count >= 0 && done >= count) break;
    const size_t f = t.find(from.s, pos);
    if (f == std::string::npos) break;
    out.append(s.slice(pos, f));
    out.append(to);
    pos = f + from.s.size();
    ++done;
  }
  out.append(s.slice(pos, t.size()));
  return Value::string(std::move(out));
}

Str case_map(const Str& s, const std::string& mapped) {
  if (mapped.size() == s.s.size()) {
    Str r(mapped);
    r.taint = s.taint;
    return r;
  }
  return s.derived(mapped);
}

std::string title_case(const std::string& t) {
  std::string out;
  bool prev_cased = false;
  size_t i = 0;
  while (i < t.size()) {
    const size_t start = i;
    next_code_point(t, i);
    const std::string ch = t.substr(start, i - start);
    const std::string up = to_upper_utf8(ch), low = to_lower_utf8(ch);
    const bool cased = up != low;
    out += cased ? (prev_cased ? low : up) : ch;
    prev_cased = cased;
  }
  return out;
}

std::string capitalize(const std::string& t) {
  if (t.empty()) return t;
  size_t i = 0;
  next_code_point(t, i);
  return to_upper_utf8(t.substr(0, i)) + to_lower_utf8(t.substr(i));
}

namespace {

int64_t cp_index_of(const std::string& t, size_t byte_pos) { return static_cast<int64_t>(cp_length(std::string_view(t).substr(0, byte_pos))); }

Value string_method(const Value& self, const std::string& name) {
  const Str s = self.str;
  auto fn = [&](auto body) { return Value::function(name, body); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool l = name != "rstrip", r = name != "lstrip";
    return fn([s, l, r](std::vector<Value>& a, Kwargs& kw) {
      return Value::string(py_strip(s, arg_or(a, kw, 0, "chars", Value::none()), l, r));
    });
  }
  if (name == "split") {
    return fn([s](std::vector<Value>& a, Kwargs& kw) {
      const Value m = arg_or(a, kw, 1, "maxsplit", Value::integer(-1));
      return py_split(s, arg_or(a, kw, 0, "sep", Value::none()), m.is(Value::Kind::kInt) ? m.i : -1);
    });
  }
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return fn([s, start](std::vector<Value>& a, Kwargs&) {
      if (a.empty()) throw std::runtime_error("needs an argument");
      std::vector<std::string> cands;
      if (a[0].is(Value::Kind::kList)) {
        for (const Value& v : *a[0].list) cands.push_back(need_str(v, "startswith/endswith").s);
      } else {
        cands.push_back(need_str(a[0], "startswith/endswith").s);
      }
      for (const std::string& c : cands) {
        const bool hit = c.size() <= s.s.size() &&
                         (start ? s.s.compare(0, c.size(), c) == 0 : s.s.compare(s.s.size() - c.size(), c.size(), c) == 0);
        if (hit) return Value::boolean(true);
      }
      return Value::boolean(false);
    });
  }
  if (name == "replace") {
    return fn([s](std::vector<Value>& a, Kwargs& kw) {
      if (a.size() < 2) throw std::runtime_error("needs two arguments");
      const Value c = arg_or(a, kw, 2, "count", Value::integer(-1));
      return py_replace(s, need_str(a[0], "replace()"), need_str(a[1], "replace()"), c.is(Value::Kind::kInt) ? c.i : -1);
    });
  }
  if (name == "upper") return fn([s](std::vector<Value>&, Kwargs&) { return Value::string(case_map(s, to_upper_utf8(s.s))); });
  if (name == "lower") return fn([s](std::vector<Value>&, Kwargs&) { return Value::string(case_map(s, to_lower_utf8(s.s))); });
  if (name == "title") return fn([s](std::vector<Value>&, Kwargs&) { return Value::string(case_map(s, title_case(s.s))); });
  if (name == "capitalize") {
    return fn([s](std::vector<Value>&, Kwargs&) { return Value::string(case_map(s, capitalize(s.s))); });
  }
  if (name == "find" || name == "count" || name == "index") {
    return fn([s, name](std::vector<Value>& a, Kwargs&) {
      if (a.empty()) throw std::runtime_error("needs an argument");
      const std::string& sub = need_str(a[0], name.c_str()).s;
      if (name == "count") {
        if (sub.empty()) return Value::integer(static_cast<int64_t>(cp_length(s.s)) + 1);
        int64_t n = 0;
        for (size_t p = s.s.find(sub); p != std::string::npos; p = s.s.find(sub, p + sub.size())) ++n;
        return Value::integer(n);
      }
      const size_t p = s.s.find(sub);
      if (p == std::string::npos && name == "index") throw std::runtime_error("substring not found");
      return Value::integer(p == std::string::npos ? -1 : cp_index_of(s.s, p));
    });
  }
  if (name == "join") {
    return fn([s](std::vector<Value>& a, Kwargs&) {
      if (a.empty() || !a[0].is(Value::Kind::kList)) throw std::runtime_error("join() needs a list");
      Str out;
      for (size_t k = 0; k < a[0].list->size(); ++k) {
        if (k) out.append(s);
        out.append(to_str((*a[0].list)[k]));
      }
      return Value::string(std::move(out));
    });
  }
  if (name == "splitlines") {
    return fn([s](std::vector<Value>&, Kwargs&) {
      List parts;
      size_t start = 0;
      for (size_t k = 0; k < s.s.size(); ++k) {
        if (s.s[k] != '\n' && s.s[k] != '\r') continue;
        parts.push_back(Value::string(s.slice(start, k)));
        if (s.s[k] == '\r' && k + 1 < s.s.size() && s.s[k + 1] == '\n') ++k;
        start = k + 1;
      }
      if (start < s.s.size()) parts.push_back(Value::string(s.slice(start, s.s.size())));
      return Value::new_list(std::move(parts));
    });
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" ||
      name == "isupper") {
    return fn([s, name](std::vector<Value>&, Kwargs&) {
      const std::string& t = s.s;
      if (name == "islower") return Value::boolean(to_lower_utf8(t) == t && to_upper_utf8(t) != t);
      if (name == "isupper") return Value::boolean(to_upper_utf8(t) == t && to_lower_utf8(t) != t);
      if (t.empty()) return Value::boolean(false);
      size_t i = 0;
      while (i < t.size()) {
        const char32_t c = next_code_point(t, i);
        const bool digit = c >= '0' && c <= '9';
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= 0x80 && !py_is_space(c));
        const bool ok = name == "isdigit" ? digit : name == "isalpha" ? alpha : name == "isalnum" ? (digit || alpha) : py_is_space(c);
        if (!ok) return Value::boolean(false);
      }
      return Value::boolean(true);
    });
  }
  return Value::undefined(name);
}

Value dict_method(const Value& self, const std::string& name) {
  const std::shared_ptr<Dict> d = self.dict;
  if (name == "items" || name == "keys" || name == "values") {
    return Value::function(name, [d, name](std::vector<Value>&, Kwargs&) {
      List out;
      for (const auto& kv : d->items) {
        if (name == "keys") out.push_back(Value::string(Str(kv.first)));
        else if (name == "values") out.push_back(kv.second);
        else out.push_back(Value::new_list({Value::string(Str(kv.first)), kv.second}));
      }
      return Value::new_list(std::move(out));
    });
  }
  if (name == "get") {
    return Value::function(name, [d](std::vector<Value>& a, Kwargs& kw) {
      if (a.empty()) throw std::runtime_error("get() needs a key");
      const Value dflt = arg_or(a, kw, 1, "default", Value::none());
      if (!a[0].is(Value::Kind::kString)) return dflt;
      const Value* v = d->find(a[0].str.s);
      return v ? *v : dflt;
    });
  }
  return Value::undefined(name);
}

}  // namespace

Value get_attr(const Value& obj, const std::string& name, bool subscript_syntax) {
  switch (obj.kind) {
    case Value::Kind::kString: return string_method(obj, name);
    case Value::Kind::kDict: {
      if (!subscript_syntax) {
        Value m = dict_method(obj, name);
        if (!m.is(Value::Kind::kUndefined)) return m;
      }
      const Value* v = obj.dict->find(name);
      if (v) return *v;
      return subscript_syntax ? dict_method(obj, name) : Value::undefined(name);
    }
    case Value::Kind::kNamespace: {
      const Value* v = obj.dict->find(name);
      return v ? *v : Value::undefined(name);
    }
    default: return Value::undefined(name);
  }
}

Value get_item(const Value& obj, const Value& key) {
  if (key.is(Value::Kind::kString)) return get_attr(obj, key.str.s, true);
  if (!key.is(Value::Kind::kInt) && !key.is(Value::Kind::kBool)) return Value::undefined();
  int64_t i = key.is(Value::Kind::kBool) ? key.b : key.i;
  if (obj.is(Value::Kind::kList)) {
    const auto n = static_cast<int64_t>(obj.list->size());
    if (i < 0) i += n;
    return i >= 0 && i < n ? (*obj.list)[static_cast<size_t>(i)] : Value::undefined();
  }
  if (obj.is(Value::Kind::kString)) {
    const auto off = cp_offsets(obj.str.s);
    const auto n = static_cast<int64_t>(off.size()) - 1;
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined();
    return Value::string(obj.str.slice(off[static_cast<size_t>(i)], off[static_cast<size_t>(i) + 1]));
  }
  return Value::undefined();
}

Value slice_value(const Value& v, const Value& start, const Value& stop, const Value& step) {
  auto as_int = [](const Value& x, int64_t dflt) {
    if (x.is(Value::Kind::kNone) || x.is(Value::Kind::kUndefined)) return std::make_pair(false, dflt);
    if (!x.is(Value::Kind::kInt)) throw std::runtime_error("slice indices must be integers");
    return std::make_pair(true, x.i);
  };
  const int64_t st = as_int(step, 1).second;
  if (st == 0) throw std::runtime_error("slice step cannot be zero");
  const bool is_list = v.is(Value::Kind::kList);
  if (!is_list && !v.is(Value::Kind::kString)) throw std::runtime_error(std::string("cannot slice ") + v.type_name());
  std::vector<size_t> off;
  if (!is_list) off = cp_offsets(v.str.s);
  const int64_t n = is_list ? static_cast<int64_t>(v.list->size()) : static_cast<int64_t>(off.size()) - 1;
  auto clamp = [&](bool has, int64_t x, int64_t dflt) {
    if (!has) return dflt;
    if (x < 0) x += n;
    if (st > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  const auto bs = as_int(start, 0), es = as_int(stop, 0);
  const int64_t b = clamp(bs.first, bs.second, st > 0 ? 0 : n - 1), e = clamp(es.first, es.second, st > 0 ? n : -1);
  if (!is_list && st == 1) return Value::string(v.str.slice(off[static_cast<size_t>(b)], off[static_cast<size_t>(std::max(b, e))]));
  List items;
  Str text;
  for (int64_t k = b; st > 0 ? k < e : k > e; k += st) {
    if (is_list) items.push_back((*v.list)[static_cast<size_t>(k)]);
    else text.append(v.str.slice(off[static_cast<size_t>(k)], off[static_cast<size_t>(k) + 1]));
  }
  return is_list ? Value::new_list(std::move(items)) : Value::string(std::move(text));
}

bool apply_test(Interpreter& in, const std::string& name, const Value& v, std::vector<Value>& args, int line) {
  using K = Value::Kind;
  auto need_arg = [&]() -> const Value& {
    if (args.empty()) in.fail(line, "test '" + name + "' needs an argument");
    return args[0];
  };
  if (name == "defined") return !v.is(K::kUndefined);
  if (name == "undefined") return v.is(K::kUndefined);
  if (name == "none") return v.is(K::kNone);
  if (name == "boolean") return v.is(K::kBool);
  if (name == "true") return v.is(K::kBool) && v.b;
  if (name == "false") return v.is(K::kBool) && !v.b;
  if (name == "integer") return v.is(K::kInt);
  if (name == "float") return v.is(K::kFloat);
  if (name == "number") return v.is(K::kInt) || v.is(K::kFloat) || v.is(K::kBool);
  if (name == "string") return v.is(K::kString);
  if (name == "mapping") return v.is(K::kDict);
  if (name == "iterable") return v.is(K::kList) || v.is(K::kString) || v.is(K::kDict);
  if (name == "sequence") return v.is(K::kList) || v.is(K::kString) || v.is(K::kDict);
  if (name == "callable") return v.is(K::kFunction);
  if (name == "odd" || name == "even") {
    if (!v.is(K::kInt)) in.fail(line, "test '" + name + "' needs an integer, got " + v.type_name());
    return (v.i % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    const Value& d = need_arg();
    if (!v.is(K::kInt) || !d.is(K::kInt) || d.i == 0) in.fail(line, "divisibleby needs non-zero integers");
    return v.i % d.i == 0;
  }
  if (name == "lower") return v.is(K::kString) && to_lower_utf8(v.str.s) == v.str.s;
  if (name == "upper") return v.is(K::kString) && to_upper_utf8(v.str.s) == v.str.s;
  if (name == "eq" || name == "equalto" || name == "==") return equals(v, need_arg());
  if (name == "ne" || name == "!=") return !equals(v, need_arg());
  if (name == "sameas") {
    const Value& o = need_arg();
    if (v.kind != o.kind) return false;
    if (v.is(K::kList)) return v.list == o.list;
    if (v.is(K::kDict) || v.is(K::kNamespace)) return v.dict == o.dict;
    return equals(v, o);
  }
  try {
    if (name == "lt" || name == "lessthan" || name == "<") return compare(v, need_arg(), true) < 0;
    if (name == "le" || name == "<=") return compare(v, need_arg(), true) <= 0;
    if (name == "gt" || name == "greaterthan" || name == ">") return compare(v, need_arg(), true) > 0;
    if (name == "ge" || name == ">=") return compare(v, need_arg(), true) >= 0;
  } catch (const std::runtime_error& e) {
    in.fail(line, e.what());
  }
  if (name == "in") {
    const Value& c = need_arg();
    if (c.is(K::kString)) return v.is(K::kString) && c.str.s.find(v.str.s) != std::string::npos;
    if (c.is(K::kList)) {
      for (const Value& x : *c.list) {
        if (equals(v, x)) return true;
      }
      return false;
    }
    if (c.is(K::kDict)) return v.is(K::kString) && c.dict->find(v.str.s) != nullptr;
    return false;
  }
  in.fail(line, "unknown test '" + name + "'");
}

void install_globals(std::unordered_map<std::string, Value>& scope) {
  scope["range"] = Value::function("range", [](std::vector<Value>& a, Kwargs&) {
    int64_t start = 0, stop = 0, step = 1;
    for (const Value& v : a) {
      if (!v.is(Value::Kind::kInt)) throw std::runtime_error("range() needs integers");
    }
    if (a.size() == 1) stop = a[0].i;
    else if (a.size() == 2 || a.size() == 3) start = a[0].i, stop = a[1].i, step = a.size() == 3 ? a[2].i : 1;
    else throw std::runtime_error("range() takes 1 to 3 arguments");
    if (step == 0) throw std::runtime_error("range() step must not be zero");
    List out;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
      if (out.size() >= 1000000) throw std::runtime_error("range() too large");
      out.push_back(Value::integer(k));
    }
    return Value::new_list(std::move(out));
  });
  scope["namespace"] = Value::function("namespace", [](std::vector<Value>& a, Kwargs& kw) {
    Value ns = Value::new_namespace();
    if (a.size() > 1) throw std::runtime_error("namespace() takes at most one positional argument");
    if (a.size() == 1) {
      if (!a[0].is(Value::Kind::kDict)) throw std::runtime_error("namespace() argument must be a dict");
      for (const auto& kv : a[0].dict->items) ns.dict->set(kv.first, kv.second);
    }
    for (auto& kv : kw) ns.dict->set(kv.first, kv.second);
    return ns;
  });
  scope["dict"] = Value::function("dict", [](std::vector<Value>& a, Kwargs& kw) {
    Value d = Value::new_dict();
    if (!a.empty() && a[0].is(Value::Kind::kDict)) *d.dict = *a[0].dict;
    for (auto& kv : kw) d.dict->set(kv.first, kv.second);
    return d;
  });
  scope["raise_exception"] = Value::function("raise_exception", [](std::vector<Value>& a, Kwargs&) -> Value {
    throw std::runtime_error(a.empty() ? std::string("(no message)") : to_str(a[0]).s);
  });
  scope["strftime_now"] = Value::function("strftime_now", [](std::vector<Value>& a, Kwargs&) {
    if (a.empty() || !a[0].is(Value::Kind::kString)) throw std::runtime_error("strftime_now() needs a format string");
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[256];
    const size_t n = std::strftime(buf, sizeof(buf), a[0].str.s.c_str(), &tm);
    return Value::string(Str(std::string(buf, n)));
  });
}

}  // namespace unmask::tok::jinja
