// GGUF reader: a bounds-checked cursor over the mapped bytes; every count is checked
// against the bytes left before anything is allocated for it.
#include "unmask/gguf.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include "unmask/error.h"

namespace unmask {

namespace {

constexpr int kMaxArrayDepth = 4;  // nested arrays are legal GGUF but never used this deep
// Parsed values take ~100 bytes each in memory: cap arrays so a hostile file cannot ask
// for 100x its size. Real files' largest arrays (vocab, merges) are well under 1M.
constexpr uint64_t kMaxArrayItems = uint64_t(1) << 22;

class Cursor {
 public:
  Cursor(const uint8_t* bytes, size_t size, const std::string& label) : p_(bytes), size_(size), label_(label) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(label_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }
  void need(uint64_t n, const char* what) const {
    if (n > left()) fail(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes, " +
                         std::to_string(left()) + " left");
  }
  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));  // the host is little-endian, as GGUF is
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }

 private:
  const uint8_t* p_;
  size_t size_, pos_ = 0;
  const std::string& label_;
};

// Smallest encoded size of one value of a type: bounds array counts before allocating.
uint64_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool: return 1;
    case GgufType::kU16:
    case GgufType::kI16: return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32: return 4;
    case GgufType::kString:
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64: return 8;
    case GgufType::kArray: return 12;
  }
  return 1;
}

GgufType read_type(Cursor& c, const std::string& key) {
  const uint32_t t = c.read<uint32_t>("value type");
  if (t > uint32_t(GgufType::kF64)) c.fail("key '" + key + "' has unknown value type " + std::to_string(t));
  return GgufType(t);
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& key, int depth) {
  GgufValue v;
  v.type = t;
  switch (t) {
    case GgufType::kU8: v.i = c.read<uint8_t>("u8"); break;
    case GgufType::kI8: v.i = c.read<int8_t>("i8"); break;
    case GgufType::kU16: v.i = c.read<uint16_t>("u16"); break;
    case GgufType::kI16: v.i = c.read<int16_t>("i16"); break;
    case GgufType::kU32: v.i = c.read<uint32_t>("u32"); break;
    case GgufType::kI32: v.i = c.read<int32_t>("i32"); break;
    case GgufType::kI64: v.i = c.read<int64_t>("i64"); break;
    case GgufType::kU64: {
      const uint64_t u = c.read<uint64_t>("u64");
      if (u > uint64_t(INT64_MAX)) c.fail("key '" + key + "': u64 value " + std::to_string(u) + " is too large");
      v.i = int64_t(u);
      break;
    }
    case GgufType::kF32: v.f = c.read<float>("f32"); break;
    case GgufType::kF64: v.f = c.read<double>("f64"); break;
    case GgufType::kBool: {
      const uint8_t b = c.read<uint8_t>("bool");
      if (b > 1) c.fail("key '" + key + "': bool value " + std::to_string(b) + " is not 0 or 1");
      v.i = b;
      break;
    }
    case GgufType::kString: v.str = c.string("string value"); break;
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth) c.fail("key '" + key + "': arrays nested too deep");
      v.elem_type = read_type(c, key);
      const uint64_t n = c.read<uint64_t>("array length");
      if (n > kMaxArrayItems)
        c.fail("key '" + key + "': array of " + std::to_string(n) + " values exceeds the limit of " +
               std::to_string(kMaxArrayItems));
      if (n > c.left() / min_encoded_size(v.elem_type))
        c.fail("key '" + key + "': array of " + std::to_string(n) + " " + gguf_type_name(v.elem_type) +
               " values cannot fit in the " + std::to_string(c.left()) + " bytes left");
      v.items.reserve(size_t(n));
      for (uint64_t j = 0; j < n; ++j) v.items.push_back(read_value(c, v.elem_type, key, depth + 1));
      break;
    }
  }
  return v;
}

// Bytes of a tensor, or Error: product of dims checked against `limit` step by step.
size_t tensor_bytes(const GgufTensorInfo& t, uint64_t limit, Cursor& c) {
  const int64_t block = dtype_block_elems(t.dtype);
  if (t.ne[0] % block != 0)
    c.fail("tensor '" + t.name + "': row of " + std::to_string(t.ne[0]) + " values is not a whole number of " +
           std::string(dtype_name(t.dtype)) + " blocks of " + std::to_string(block));
  const auto too_big = [&] {
    c.fail("tensor '" + t.name + "': size exceeds the file (" + std::to_string(limit) + " bytes of data)");
  };
  if (uint64_t(t.ne[0] / block) > limit / dtype_size(t.dtype)) too_big();
  uint64_t bytes = uint64_t(t.ne[0] / block) * dtype_size(t.dtype);
  for (int d = 1; d < t.ndim; ++d) {
    if (uint64_t(t.ne[size_t(d)]) > limit / std::max<uint64_t>(bytes, 1)) too_big();
    bytes *= uint64_t(t.ne[size_t(d)]);
  }
  return size_t(bytes);  // <= limit * ne: the caller checks it against the data section
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  static const char* const kNames[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
  return uint32_t(t) <= uint32_t(GgufType::kF64) ? kNames[uint32_t(t)] : "?";
}

GgufValue GgufValue::integer(GgufType type, int64_t v) {
  GgufValue g;
  g.type = type;
  g.i = v;
  return g;
}
GgufValue GgufValue::f32(float v) {
  GgufValue g;
  g.type = GgufType::kF32;
  g.f = v;
  return g;
}
GgufValue GgufValue::string(std::string v) {
  GgufValue g;
  g.type = GgufType::kString;
  g.str = std::move(v);
  return g;
}
GgufValue GgufValue::array(GgufType elem_type, std::vector<GgufValue> items) {
  GgufValue g;
  g.type = GgufType::kArray;
  g.elem_type = elem_type;
  g.items = std::move(items);
  return g;
}
bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kU16:
    case GgufType::kI16:
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kU64:
    case GgufType::kI64: return true;
    default: return false;
  }
}

bool ggml_type_to_dtype(uint32_t ggml_type, DType* out) {
  switch (ggml_type) {
    case kGgmlF32: *out = DType::F32; return true;
    case kGgmlF16: *out = DType::F16; return true;
    case kGgmlBF16: *out = DType::BF16; return true;
    case kGgmlQ8_0: *out = DType::Q8_0; return true;
    case kGgmlQ4_0: *out = DType::Q4_0; return true;
    case kGgmlQ4_K: *out = DType::Q4_K; return true;
    case kGgmlQ6_K: *out = DType::Q6_K; return true;
    default: return false;
  }
}

uint32_t dtype_to_ggml_type(DType t) {
  switch (t) {
    case DType::F32: return kGgmlF32;
    case DType::F16: return kGgmlF16;
    case DType::BF16: return kGgmlBF16;
    case DType::Q8_0: return kGgmlQ8_0;
    case DType::Q4_0: return kGgmlQ4_0;
    case DType::Q4_K: return kGgmlQ4_K;
    case DType::Q6_K: return kGgmlQ6_K;
    default: throw Error("gguf: dtype " + std::string(dtype_name(t)) + " has no GGUF tensor type here");
  }
}

GgufHeader parse_gguf(const uint8_t* bytes, size_t size, const std::string& label) {
  Cursor c(bytes, size, label);
  GgufHeader h;
  if (size < 4 || std::memcmp(bytes, "GGUF", 4) != 0) throw Error(label + ": not a GGUF file (no GGUF magic)");
  c.read<uint32_t>("magic");
  h.version = c.read<uint32_t>("version");
  if (h.version != 2 && h.version != 3)
    c.fail("GGUF version " + std::to_string(h.version) + " is not supported (2 or 3)");
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("key-value count");
  // A key-value needs >= 13 bytes (key length, type, one byte); a tensor info >= 24.
  if (n_kv > c.left() / 13) c.fail(std::to_string(n_kv) + " key-values cannot fit in the file");
  if (n_tensors > c.left() / 24) c.fail(std::to_string(n_tensors) + " tensors cannot fit in the file");

  std::set<std::string> keys;
  h.kvs.reserve(size_t(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.string("key");
    if (!keys.insert(key).second) c.fail("duplicate key '" + key + "'");
    const GgufType t = read_type(c, key);
    GgufValue v = read_value(c, t, key, 0);
    if (key == "general.alignment") {
      if (t != GgufType::kU32 || v.i == 0 || (v.i & (v.i - 1)) != 0)
        c.fail("general.alignment must be a u32 power of two, got " + std::string(gguf_type_name(t)) + " " +
               std::to_string(v.i));
      h.alignment = uint64_t(v.i);
    }
    h.kvs.emplace_back(std::move(key), std::move(v));
  }

  std::set<std::string> names;
  h.tensors.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.string("tensor name");
    if (!names.insert(t.name).second) c.fail("duplicate tensor '" + t.name + "'");
    const uint32_t ndim = c.read<uint32_t>("tensor dims");
    if (ndim < 1 || ndim > uint32_t(kMaxDims))
      c.fail("tensor '" + t.name + "' has " + std::to_string(ndim) + " dims (1 to 4 supported)");
    t.ndim = int(ndim);
    for (uint32_t d = 0; d < ndim; ++d) {
      const uint64_t ne = c.read<uint64_t>("tensor dim");
      // Dims beyond 2^62 cannot describe real data and would overflow the size sums.
      if (ne == 0 || ne > (uint64_t(1) << 62))
        c.fail("tensor '" + t.name + "' has dim " + std::to_string(ne) + " (must be 1 to 2^62)");
      t.ne[d] = int64_t(ne);
    }
    const uint32_t type = c.read<uint32_t>("tensor type");
    if (!ggml_type_to_dtype(type, &t.dtype))
      c.fail("tensor '" + t.name + "' has ggml type " + std::to_string(type) +
             ", unsupported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)");
    t.offset = c.read<uint64_t>("tensor offset");
    h.tensors.push_back(std::move(t));
  }

  const uint64_t a = h.alignment;
  const uint64_t data_offset = (uint64_t(c.pos()) + a - 1) / a * a;
  if (data_offset > size && n_tensors > 0) c.fail("data section starts past the end of the file");
  h.data_offset = size_t(std::min<uint64_t>(data_offset, size));
  const uint64_t data_size = size - h.data_offset;
  std::vector<std::pair<uint64_t, size_t>> spans;  // (offset, tensor index)
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    GgufTensorInfo& t = h.tensors[i];
    if (t.offset % a != 0)
      c.fail("tensor '" + t.name + "' offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(a));
    t.nbytes = tensor_bytes(t, data_size, c);
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      c.fail("tensor '" + t.name + "' [" + std::to_string(t.offset) + ", +" + std::to_string(t.nbytes) +
             ") lies outside the data section of " + std::to_string(data_size) + " bytes");
    spans.emplace_back(t.offset, i);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    const GgufTensorInfo& prev = h.tensors[spans[i - 1].second];
    if (prev.offset + prev.nbytes > spans[i].first)
      c.fail("tensors '" + prev.name + "' and '" + h.tensors[spans[i].second].name + "' overlap");
  }
  return h;
}

std::shared_ptr<GgufFile> GgufFile::open(const std::string& path) {
  auto g = std::make_shared<GgufFile>();
  g->file_ = std::make_unique<MappedFile>(path);
  g->header_ = parse_gguf(g->file_->data(), g->file_->size(), path);
  for (size_t i = 0; i < g->header_.kvs.size(); ++i) g->kv_index_[g->header_.kvs[i].first] = i;
  for (size_t i = 0; i < g->header_.tensors.size(); ++i) g->tensor_index_[g->header_.tensors[i].name] = i;
  return g;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &header_.kvs[it->second].second;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) throw Error(path() + ": missing key '" + key + "'");
  if (!v->is_integer())
    throw Error(path() + ": key '" + key + "' is " + gguf_type_name(v->type) + ", expected an integer");
  return v->i;
}

int64_t GgufFile::get_int(const std::string& key, int64_t fallback) const {
  return find(key) ? get_int(key) : fallback;
}

double GgufFile::get_float(const std::string& key, double fallback) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (v->is_float()) return v->f;
  if (v->is_integer()) return double(v->i);
  throw Error(path() + ": key '" + key + "' is " + gguf_type_name(v->type) + ", expected a number");
}

bool GgufFile::get_bool(const std::string& key, bool fallback) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (v->type != GgufType::kBool)
    throw Error(path() + ": key '" + key + "' is " + gguf_type_name(v->type) + ", expected a bool");
  return v->i != 0;
}

std::string GgufFile::get_string(const std::string& key, const std::string& fallback) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (v->type != GgufType::kString)
    throw Error(path() + ": key '" + key + "' is " + gguf_type_name(v->type) + ", expected a string");
  return v->str;
}

const GgufTensorInfo* GgufFile::tensor_info(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &header_.tensors[it->second];
}

TensorView GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* t = tensor_info(name);
  if (!t) throw Error(path() + ": missing tensor '" + name + "'");
  TensorView v;
  v.data = file_->data() + header_.data_offset + t->offset;
  v.dtype = t->dtype;
  v.ndim = t->ndim;
  for (int d = 0; d < t->ndim; ++d) v.shape[size_t(d)] = t->ne[size_t(t->ndim - 1 - d)];
  return v;
}

bool is_gguf_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  return f && f.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

}  // namespace unmask
