// io/json_file.h — reading JSON files and typed fields with errors that name
// the file and the field. Owns nothing beyond the returned json values.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace unmask {

// Parses a whole JSON file. Throws Error("<path>: ...") if missing or malformed.
nlohmann::json read_json_file(const std::string& path);

// Typed access to a config object; `file` is used in error messages.
class JsonFields {
 public:
  JsonFields(const nlohmann::json& j, std::string file) : j_(j), file_(std::move(file)) {}
  bool has(const char* key) const;  // present and not null
  int64_t integer(const char* key) const;                      // required
  int64_t integer_or(const char* key, int64_t fallback) const;  // null/absent -> fallback
  // As integer / integer_or, but the value must fit an int (sizes, counts, token ids).
  int int32(const char* key) const;
  int int32_or(const char* key, int fallback) const;
  double number(const char* key) const;
  double number_or(const char* key, double fallback) const;
  bool boolean_or(const char* key, bool fallback) const;
  std::string string_or(const char* key, const std::string& fallback) const;
  // First element of an array field, or the field itself if it's a scalar int (eos lists).
  std::optional<int64_t> first_integer(const char* key) const;
  const nlohmann::json& raw() const { return j_; }
  const std::string& file() const { return file_; }

 private:
  [[noreturn]] void fail(const char* key, const std::string& what) const;
  const nlohmann::json& j_;
  std::string file_;
};

}  // namespace unmask
