// tokenizer/jinja_builtins_util.h — helpers shared by jinja_builtins.cpp and
// jinja_filters.cpp (Python string semantics on taint-carrying strings).
#pragma once
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace unmask::tok::jinja {

bool py_is_space(char32_t c);  // Python str.isspace
// Positional argument `index`, else keyword `name`, else `dflt`.
Value arg_or(std::vector<Value>& args, Kwargs& kwargs, size_t index, const char* name, Value dflt);
const Str& need_str(const Value& v, const char* what);  // throws std::runtime_error
Str py_strip(const Str& s, const Value& chars, bool left, bool right);
Value py_split(const Str& s, const Value& sep, int64_t maxsplit);
Value py_replace(const Str& s, const Str& from, const Str& to, int64_t count);
// A case-mapped copy of s: taint kept in place when the byte length is unchanged.
Str case_map(const Str& s, const std::string& mapped);
std::string title_case(const std::string& t);
std::string capitalize(const std::string& t);

}  // namespace unmask::tok::jinja
