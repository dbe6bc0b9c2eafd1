// unmask/gguf.h — GGUF files (llama.cpp's model format): reader over mmap and writer.
//
// Layout (little-endian): "GGUF", u32 version (2 or 3), u64 tensor count, u64 key-value
// count; key-values (string key, u32 value type, value; arrays: u32 element type, u64
// count, elements); tensor infos (string name, u32 n_dims, u64 ne[n_dims] fastest
// dimension first, u32 ggml type, u64 offset); padding to `general.alignment` (default
// 32); the data section. Strings are u64 length + bytes (no terminator).
//
// GgufFile owns the mapping and the parsed header (key-values are copied out, tensor
// data is not). Its TensorViews borrow the mapping: valid while the GgufFile lives.
// Views use unmask's order: shape[0] is the slowest dimension (ggml's ne reversed), so
// a ggml matrix ne = [k, out] is a TensorView [out, k].
//
// GgufWriter borrows the tensor data given to add_tensor until write() returns, or
// calls the tensor's producer during write() (one tensor in memory at a time).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "unmask/safetensors.h"
#include "unmask/tensor.h"

namespace unmask {

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
const char* gguf_type_name(GgufType t);

// One key-value value. Integers of every width are held in `i` (u64 values above
// INT64_MAX are rejected by the reader), floats in `f`, bools in `i` (0 / 1).
struct GgufValue {
  GgufType type = GgufType::kU32;
  int64_t i = 0;
  double f = 0;
  std::string str;
  GgufType elem_type = GgufType::kU32;  // arrays
  std::vector<GgufValue> items;         // arrays

  static GgufValue integer(GgufType type, int64_t v);
  static GgufValue u32(uint32_t v) { return integer(GgufType::kU32, v); }
  static GgufValue i32(int32_t v) { return integer(GgufType::kI32, v); }
  static GgufValue boolean(bool v) { return integer(GgufType::kBool, v); }
  static GgufValue f32(float v);
  static GgufValue string(std::string v);
  static GgufValue array(GgufType elem_type, std::vector<GgufValue> items);
  bool is_integer() const;  // any integer width (not bool)
  bool is_float() const { return type == GgufType::kF32 || type == GgufType::kF64; }
};

// ggml type ids of the supported tensor types (others are rejected by name).
constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ8_0 = 8, kGgmlQ4_K = 12, kGgmlQ6_K = 14,
                   kGgmlBF16 = 30;
bool ggml_type_to_dtype(uint32_t ggml_type, DType* out);
uint32_t dtype_to_ggml_type(DType t);  // throws Error for dtypes GGUF cannot hold here

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  int ndim = 0;
  std::array<int64_t, kMaxDims> ne{};  // ggml order: ne[0] contiguous
  uint64_t offset = 0;                 // from the start of the data section
  size_t nbytes = 0;
};

struct GgufHeader {
  uint32_t version = 3;
  uint64_t alignment = 32;
  size_t data_offset = 0;  // from the start of the file
  std::vector<std::pair<std::string, GgufValue>> kvs;  // in file order
  std::vector<GgufTensorInfo> tensors;                  // in file order
};

// Parses and validates a whole GGUF blob: magic, version, every length against the
// bytes left, known value and tensor types, no duplicate keys or tensor names, dims
// > 0 (at most 4) with ne[0] a whole number of blocks, sizes computed without
// overflow, offsets aligned, every tensor inside the data section and no two
// overlapping. `label` names the file in errors. Throws Error on any bad input.
GgufHeader parse_gguf(const uint8_t* bytes, size_t size, const std::string& label);

class GgufFile {
 public:
  static std::shared_ptr<GgufFile> open(const std::string& path);  // mmap + parse_gguf

  const std::string& path() const { return file_->path(); }
  const GgufHeader& header() const { return header_; }
  const GgufValue* find(const std::string& key) const;  // null when absent
  // Typed getters: Error naming file and key when absent (no default) or mistyped.
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;

  bool has_tensor(const std::string& name) const { return tensor_index_.count(name) != 0; }
  const GgufTensorInfo* tensor_info(const std::string& name) const;  // null when absent
  TensorView tensor(const std::string& name) const;                  // Error when absent

 private:
  std::unique_ptr<MappedFile> file_;
  GgufHeader header_;
  std::map<std::string, size_t> kv_index_, tensor_index_;
};

// True when the file at `path` starts with the GGUF magic (false for folders).
bool is_gguf_file(const std::string& path);

class GgufWriter {
 public:
  using Producer = std::function<void(std::vector<uint8_t>& bytes)>;  // fills exactly nbytes

  void set(const std::string& key, GgufValue value);  // replaces an earlier value of the key
  // `shape` in unmask order (slowest first). `data` is borrowed until write() returns.
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data);
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape, Producer produce);
  // Writes the file (version 3). `on_tensor(i, n)` is called after each tensor's data.
  void write(const std::string& path, const std::function<void(size_t, size_t)>& on_tensor = {}) const;

 private:
  struct Pending {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const void* data = nullptr;
    Producer produce;
  };
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::vector<Pending> tensors_;
};

}  // namespace unmask
