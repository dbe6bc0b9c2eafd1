// tokenizer/jinja_value.cpp — Str taint bookkeeping, Python-style printing, JSON, equality.
#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "tokenizer/unicode.h"

namespace unmask::tok::jinja {

Str Str::untrusted(std::string text) {
  Str r(std::move(text));
  if (!r.s.empty()) r.taint.push_back({0, static_cast<uint32_t>(r.s.size())});
  return r;
}

void Str::append(const Str& o) {
  const auto base = static_cast<uint32_t>(s.size());
  s += o.s;
  for (const Span& sp : o.taint) {
    const Span shifted{sp.begin + base, sp.end + base};
    if (!taint.empty() && taint.back().end == shifted.begin) taint.back().end = shifted.end;
    else taint.push_back(shifted);
  }
}

Str Str::slice(size_t begin, size_t end) const {
  Str r(s.substr(begin, end - begin));
  for (const Span& sp : taint) {
    const size_t b = std::max<size_t>(sp.begin, begin), e = std::min<size_t>(sp.end, end);
    if (b < e) r.taint.push_back({static_cast<uint32_t>(b - begin), static_cast<uint32_t>(e - begin)});
  }
  return r;
}

Str Str::derived(std::string text) const { return tainted() ? untrusted(std::move(text)) : Str(std::move(text)); }

const Value* Dict::find(std::string_view key) const {
  for (const auto& kv : items) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

Value* Dict::find(std::string_view key) {
  for (auto& kv : items) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

void Dict::set(const std::string& key, Value v) {
  if (Value* old = find(key)) *old = std::move(v);
  else items.emplace_back(key, std::move(v));
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b;
    case Kind::kInt: return i != 0;
    case Kind::kFloat: return f != 0;
    case Kind::kString: return !str.s.empty();
    case Kind::kList: return !list->empty();
    case Kind::kDict: return !dict->items.empty();
    case Kind::kNamespace:
    case Kind::kFunction: return true;
  }
  return false;
}

const char* Value::type_name() const {
  switch (kind) {
    case Kind::kUndefined: return "undefined";
    case Kind::kNone: return "none";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "string";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "namespace";
    case Kind::kFunction: return "function";
  }
  return "?";
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Shortest round-trip digits, laid out the way Python's float repr does.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t epos = sci.find('e');
  const int exp = std::stoi(sci.substr(epos + 1));
  std::string mant = sci.substr(0, epos);
  const bool neg = !mant.empty() && mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." + digits.substr(static_cast<size_t>(exp) + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += e;
  }
  return neg ? "-" + out : out;
}

namespace {

std::string py_repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  const char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(q)) out += std::string("\\") + q;
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + q;
}

void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof(b), "\\u%04x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void json_into(const Value& v, int indent, bool sort_keys, int depth, std::string& out) {
  using K = Value::Kind;
  const std::string pad = indent >= 0 ? "\n" + std::string(static_cast<size_t>(indent * (depth + 1)), ' ') : "";
  const std::string close_pad = indent >= 0 ? "\n" + std::string(static_cast<size_t>(indent * depth), ' ') : "";
  const char* item_sep = indent >= 0 ? "," : ", ";
  switch (v.kind) {
    case K::kUndefined:
    case K::kNone: out += "null"; return;
    case K::kBool: out += v.b ? "true" : "false"; return;
    case K::kInt: out += std::to_string(v.i); return;
    case K::kFloat: {
      if (std::isnan(v.f)) out += "NaN";
      else if (std::isinf(v.f)) out += v.f > 0 ? "Infinity" : "-Infinity";
      else out += format_float(v.f);
      return;
    }
    case K::kString: json_string(v.str.s, out); return;
    case K::kList: {
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += item_sep;
        out += pad;
        json_into((*v.list)[k], indent, sort_keys, depth + 1, out);
      }
      out += close_pad + "]";
      return;
    }
    case K::kDict:
    case K::kNamespace: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict->items) items.push_back(&kv);
      if (sort_keys) std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += item_sep;
        out += pad;
        json_string(items[k]->first, out);
        out += ": ";
        json_into(items[k]->second, indent, sort_keys, depth + 1, out);
      }
      out += close_pad + "}";
      return;
    }
    case K::kFunction: throw std::runtime_error("cannot convert a function to JSON");
  }
}

}  // namespace

std::string repr(const Value& v) {
  using K = Value::Kind;
  switch (v.kind) {
    case K::kString: return py_repr_string(v.str.s);
    case K::kList: {
      std::string out = "[";
      for (size_t k = 0; k < v.list->size(); ++k) out += (k ? ", " : "") + repr((*v.list)[k]);
      return out + "]";
    }
    case K::kDict: {
      std::string out = "{";
      for (size_t k = 0; k < v.dict->items.size(); ++k) {
        out += (k ? ", " : "") + py_repr_string(v.dict->items[k].first) + ": " + repr(v.dict->items[k].second);
      }
      return out + "}";
    }
    default: return to_str(v).s;
  }
}

Str to_str(const Value& v) {
  using K = Value::Kind;
  switch (v.kind) {
    case K::kUndefined: return Str();
    case K::kNone: return Str("None");
    case K::kBool: return Str(v.b ? "True" : "False");
    case K::kInt: return Str(std::to_string(v.i));
    case K::kFloat: return Str(format_float(v.f));
    case K::kString: return v.str;
    case K::kList:
    case K::kDict: {
      Str r(repr(v));
      return any_taint(v) ? Str::untrusted(r.s) : r;
    }
    case K::kNamespace: return Str("<Namespace>");
    case K::kFunction: return Str("<function " + v.name + ">");
  }
  return Str();
}

std::string to_json(const Value& v, int indent, bool sort_keys) {
  std::string out;
  json_into(v, indent, sort_keys, 0, out);
  return out;
}

bool any_taint(const Value& v) {
  using K = Value::Kind;
  switch (v.kind) {
    case K::kString: return v.str.tainted();
    case K::kList:
      return std::any_of(v.list->begin(), v.list->end(), [](const Value& x) { return any_taint(x); });
    case K::kDict:
    case K::kNamespace:
      return std::any_of(v.dict->items.begin(), v.dict->items.end(), [](const auto& kv) { return any_taint(kv.second); });
    default: return false;
  }
}

bool equals(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.kind != K::kFloat && b.kind != K::kFloat) {
      return (a.kind == K::kBool ? a.b : a.i) == (b.kind == K::kBool ? b.b : b.i);
    }
    return a.as_double() == b.as_double();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case K::kUndefined:
    case K::kNone: return true;
    case K::kString: return a.str.s == b.str.s;
    case K::kList: {
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k) {
        if (!equals((*a.list)[k], (*b.list)[k])) return false;
      }
      return true;
    }
    case K::kDict: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& kv : a.dict->items) {
        const Value* o = b.dict->find(kv.first);
        if (!o || !equals(kv.second, *o)) return false;
      }
      return true;
    }
    default: return a.dict == b.dict && a.fn == b.fn;
  }
}

int compare(const Value& a, const Value& b, bool case_sensitive) {
  if (a.is_number() && b.is_number()) {
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is(Value::Kind::kString) && b.is(Value::Kind::kString)) {
    std::string x = a.str.s, y = b.str.s;
    if (!case_sensitive) {
      for (char& c : x) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      for (char& c : y) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is(Value::Kind::kList) && b.is(Value::Kind::kList)) {
    for (size_t k = 0; k < std::min(a.list->size(), b.list->size()); ++k) {
      if (int c = compare((*a.list)[k], (*b.list)[k], case_sensitive)) return c;
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
  }
  throw std::runtime_error(std::string("cannot compare ") + a.type_name() + " with " + b.type_name());
}

size_t cp_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::vector<size_t> cp_offsets(std::string_view s) {
  std::vector<size_t> off;
  off.reserve(s.size() + 1);
  for (size_t k = 0; k < s.size(); ++k) {
    if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) off.push_back(k);
  }
  off.push_back(s.size());
  return off;
}

}  // namespace unmask::tok::jinja
