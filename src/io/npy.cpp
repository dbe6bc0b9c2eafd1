// NumPy .npy reader/writer. Layout (numpy format docs):
//   "\x93NUMPY" | major | minor | header_len (u16 LE for 1.0, u32 LE for 2.0) |
//   header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   padded with spaces and ended by '\n' | payload (C order).
#include "unmask/npy.h"

#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>

#include "unmask/error.h"

namespace unmask {

namespace {

constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

// A strict parser for the header dict numpy writes: string keys; values are strings,
// True/False or tuples of non-negative integers.
class HeaderParser {
 public:
  HeaderParser(std::string text, std::string label) : s_(std::move(text)), label_(std::move(label)) {}

  struct Value {
    enum Kind { kString, kBool, kTuple } kind = kString;
    std::string str;
    bool boolean = false;
    std::vector<int64_t> tuple;
  };

  std::map<std::string, Value> parse_dict() {
    std::map<std::string, Value> out;
    skip_ws();
    expect('{');
    skip_ws();
    while (peek() != '}') {
      std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      Value v = parse_value();
      if (!out.emplace(key, std::move(v)).second) fail("duplicate key '" + key + "'");
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        skip_ws();
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    ++pos_;
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the header dict");
    return out;
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(label_ + ": malformed .npy header at offset " + std::to_string(pos_) + ": " + what);
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++pos_;
    size_t end = s_.find(q, pos_);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  Value parse_value() {
    Value v;
    char c = peek();
    if (c == '\'' || c == '"') {
      v.kind = Value::kString;
      v.str = parse_string();
    } else if (s_.compare(pos_, 4, "True") == 0) {
      v.kind = Value::kBool;
      v.boolean = true;
      pos_ += 4;
    } else if (s_.compare(pos_, 5, "False") == 0) {
      v.kind = Value::kBool;
      pos_ += 5;
    } else if (c == '(') {
      v.kind = Value::kTuple;
      ++pos_;
      skip_ws();
      while (peek() != ')') {
        v.tuple.push_back(parse_int());
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          skip_ws();
        } else if (peek() != ')') {
          fail("expected ',' or ')' in shape");
        }
      }
      ++pos_;
    } else {
      fail("unsupported value");
    }
    return v;
  }
  int64_t parse_int() {
    if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a non-negative integer");
    int64_t v = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      int d = s_[pos_++] - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10) fail("integer overflow in shape");
      v = v * 10 + d;
    }
    return v;
  }

  std::string s_, label_;
  size_t pos_ = 0;
};

bool dtype_from_descr(const std::string& d, NpyDType* out) {
  if (d == "<f4") *out = NpyDType::kF32;
  else if (d == "<i4") *out = NpyDType::kI32;
  else if (d == "<i8") *out = NpyDType::kI64;
  else return false;
  return true;
}

// Element count of `shape`, or -1 on int64 overflow.
int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

template <typename T>
NpyArray make_array(NpyDType dtype, const std::vector<T>& values, std::vector<int64_t> shape) {
  NpyArray a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  if (checked_numel(a.shape) != int64_t(values.size()))
    throw Error("npy: shape " + a.shape_string() + " does not match " + std::to_string(values.size()) + " values");
  a.bytes.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(a.bytes.data(), values.data(), a.bytes.size());  // host is little-endian
  return a;
}

}  // namespace

size_t npy_itemsize(NpyDType t) { return t == NpyDType::kI64 ? 8 : 4; }

const char* npy_descr(NpyDType t) {
  switch (t) {
    case NpyDType::kF32: return "<f4";
    case NpyDType::kI32: return "<i4";
    case NpyDType::kI64: return "<i8";
  }
  return "?";
}

int64_t NpyArray::numel() const { return checked_numel(shape); }

std::string NpyArray::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<float> NpyArray::to_f32() const {
  if (dtype != NpyDType::kF32) throw Error(std::string("npy: expected dtype <f4, found ") + npy_descr(dtype));
  std::vector<float> out(bytes.size() / 4);
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

std::vector<int64_t> NpyArray::to_i64() const {
  if (dtype == NpyDType::kI64) {
    std::vector<int64_t> out(bytes.size() / 8);
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
  }
  if (dtype == NpyDType::kI32) {
    std::vector<int32_t> tmp(bytes.size() / 4);
    if (!tmp.empty()) std::memcpy(tmp.data(), bytes.data(), bytes.size());
    return std::vector<int64_t>(tmp.begin(), tmp.end());
  }
  throw Error(std::string("npy: expected an integer dtype, found ") + npy_descr(dtype));
}

NpyArray npy_from_f32(const std::vector<float>& v, std::vector<int64_t> shape) {
  return make_array(NpyDType::kF32, v, std::move(shape));
}
NpyArray npy_from_i64(const std::vector<int64_t>& v, std::vector<int64_t> shape) {
  return make_array(NpyDType::kI64, v, std::move(shape));
}
NpyArray npy_from_i32(const std::vector<int32_t>& v, std::vector<int64_t> shape) {
  return make_array(NpyDType::kI32, v, std::move(shape));
}

NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& label) {
  if (size < 10 || std::memcmp(data, kMagic, 6) != 0) throw Error(label + ": not a .npy file (bad magic)");
  const int major = data[6], minor = data[7];
  size_t header_len = 0, preamble = 0;
  if (major == 1 && minor == 0) {
    header_len = size_t(data[8]) | size_t(data[9]) << 8;
    preamble = 10;
  } else if (major == 2 && minor == 0) {
    if (size < 12) throw Error(label + ": truncated .npy preamble");
    header_len = size_t(data[8]) | size_t(data[9]) << 8 | size_t(data[10]) << 16 | size_t(data[11]) << 24;
    preamble = 12;
  } else {
    throw Error(label + ": unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor) +
                " (supported: 1.0, 2.0)");
  }
  if (header_len > size - preamble)
    throw Error(label + ": .npy header length " + std::to_string(header_len) + " exceeds file size " +
                std::to_string(size));
  std::string header(reinterpret_cast<const char*>(data) + preamble, header_len);
  auto dict = HeaderParser(header, label).parse_dict();
  for (const char* key : {"descr", "fortran_order", "shape"})
    if (!dict.count(key)) throw Error(label + ": .npy header has no '" + key + "' key");
  if (dict.size() != 3) throw Error(label + ": .npy header has keys other than descr, fortran_order, shape");
  const auto& descr = dict["descr"];
  const auto& fortran = dict["fortran_order"];
  const auto& shape = dict["shape"];
  if (descr.kind != HeaderParser::Value::kString) throw Error(label + ": .npy 'descr' is not a string");
  if (fortran.kind != HeaderParser::Value::kBool) throw Error(label + ": .npy 'fortran_order' is not True/False");
  if (shape.kind != HeaderParser::Value::kTuple) throw Error(label + ": .npy 'shape' is not a tuple");
  NpyArray a;
  if (!dtype_from_descr(descr.str, &a.dtype))
    throw Error(label + ": unsupported .npy dtype '" + descr.str + "' (supported: <f4, <i4, <i8)");
  if (fortran.boolean) throw Error(label + ": Fortran-order .npy arrays are not supported");
  a.shape = shape.tuple;
  const int64_t n = checked_numel(a.shape);
  const size_t payload = size - preamble - header_len;
  const size_t item = npy_itemsize(a.dtype);
  if (n < 0 || uint64_t(n) > std::numeric_limits<size_t>::max() / item)
    throw Error(label + ": .npy shape " + a.shape_string() + " overflows");
  if (size_t(n) * item != payload)
    throw Error(label + ": .npy shape " + a.shape_string() + " x " + std::to_string(item) + " bytes = " +
                std::to_string(size_t(n) * item) + " bytes, but the payload is " + std::to_string(payload) + " bytes");
  a.bytes.assign(data + preamble + header_len, data + size);
  return a;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw Error(path + ": read error");
  return parse_npy(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> serialize_npy(const NpyArray& a) {
  if (checked_numel(a.shape) < 0 || size_t(a.numel()) * npy_itemsize(a.dtype) != a.bytes.size())
    throw Error("npy: shape " + a.shape_string() + " does not match " + std::to_string(a.bytes.size()) + " bytes");
  std::string shape = "(";
  for (size_t i = 0; i < a.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(a.shape[i]);
  shape += a.shape.size() == 1 ? ",)" : ")";  // Python's one-element tuple spelling
  std::string header = std::string("{'descr': '") + npy_descr(a.dtype) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Header length including padding and '\n' such that the data starts 64-byte aligned.
  auto padded_len = [&](size_t pre) { return (pre + header.size() + 1 + 63) / 64 * 64 - pre; };
  const size_t preamble = padded_len(10) <= 65535 ? 10 : 12;
  const size_t hl = padded_len(preamble);
  header.append(hl - header.size() - 1, ' ');
  header += '\n';
  std::vector<uint8_t> out(kMagic, kMagic + 6);
  out.push_back(preamble == 10 ? 1 : 2);
  out.push_back(0);
  for (size_t b = 0; b < preamble - 8; ++b) out.push_back(uint8_t(hl >> (8 * b)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), a.bytes.begin(), a.bytes.end());
  return out;
}

void write_npy(const std::string& path, const NpyArray& a) {
  std::vector<uint8_t> bytes = serialize_npy(a);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(path + ": cannot open for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) throw Error(path + ": write failed");
}

}  // namespace unmask
