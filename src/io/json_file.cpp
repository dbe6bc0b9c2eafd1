#include "io/json_file.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "unmask/error.h"

namespace unmask {

nlohmann::json read_json_file(const std::string& path) {
  std::error_code ec;
  // Checked before opening: a directory would read as empty (a misleading "malformed
  // JSON") and a FIFO would block the open.
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    throw Error(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed JSON: " + e.what());
  }
}

void JsonFields::fail(const char* key, const std::string& what) const {
  throw Error(file_ + ": field '" + key + "' " + what);
}

bool JsonFields::has(const char* key) const {
  auto it = j_.find(key);
  return it != j_.end() && !it->is_null();
}

int64_t JsonFields::integer(const char* key) const {
  if (!has(key)) fail(key, "is missing");
  const auto& v = j_.at(key);
  if (!v.is_number_integer()) fail(key, "must be an integer, got " + v.dump());
  return v.get<int64_t>();
}

int64_t JsonFields::integer_or(const char* key, int64_t fallback) const {
  return has(key) ? integer(key) : fallback;
}

int JsonFields::int32(const char* key) const {
  const int64_t v = integer(key);
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
    fail(key, "= " + std::to_string(v) + " is out of range");
  return int(v);
}

int JsonFields::int32_or(const char* key, int fallback) const { return has(key) ? int32(key) : fallback; }

double JsonFields::number(const char* key) const {
  if (!has(key)) fail(key, "is missing");
  const auto& v = j_.at(key);
  if (!v.is_number()) fail(key, "must be a number, got " + v.dump());
  return v.get<double>();
}

double JsonFields::number_or(const char* key, double fallback) const {
  return has(key) ? number(key) : fallback;
}

bool JsonFields::boolean_or(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_boolean()) fail(key, "must be true or false, got " + v.dump());
  return v.get<bool>();
}

std::string JsonFields::string_or(const char* key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_string()) fail(key, "must be a string, got " + v.dump());
  return v.get<std::string>();
}

std::optional<int64_t> JsonFields::first_integer(const char* key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = j_.at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int64_t>();
  fail(key, "must be an integer or a list of integers, got " + v.dump());
}

}  // namespace unmask
