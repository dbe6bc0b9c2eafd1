// unmask/safetensors.h — safetensors files read in place over mmap.
//
// TensorStore owns the mappings of one model's weight files (a single
// `*.safetensors` or the shards named by `model.safetensors.index.json`).
// The TensorViews it hands out borrow those mappings: they stay valid for as
// long as the TensorStore (or a shared_ptr to it) lives. Nothing is copied.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "unmask/tensor.h"

namespace unmask {

// A read-only memory mapping of a whole file. Owns the mapping.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
};

// Parses and validates the header of a safetensors blob (the whole file's bytes):
// 8-byte little-endian header length, JSON header, data section. Checks: known
// dtype, shape entries >= 0 and <= kMaxDims dims, offsets within the data section,
// byte span == numel * dtype size, spans pairwise non-overlapping.
// `label` names the file in error messages. Throws Error; never crashes on any input.
std::vector<SafetensorsEntry> parse_safetensors(const uint8_t* bytes, size_t size,
                                                const std::string& label,
                                                size_t* data_offset_out = nullptr);

class TensorStore {
 public:
  // `path` is a model folder (uses model.safetensors.index.json if present, else
  // model.safetensors, else the single *.safetensors file) or a .safetensors file.
  static std::shared_ptr<TensorStore> open(const std::string& path);

  bool has(const std::string& name) const { return views_.count(name) != 0; }
  // Throws Error("<file>: missing tensor <name>") when absent.
  TensorView get(const std::string& name) const;
  const std::map<std::string, TensorView>& all() const { return views_; }
  // Which file a tensor came from (for error messages).
  std::string file_of(const std::string& name) const;
  size_t total_bytes() const;  // sum of tensor byte spans
  const std::string& description() const { return description_; }

 private:
  void add_file(const std::string& path);
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> views_;
  std::map<std::string, size_t> file_index_;
  std::string description_;
};

}  // namespace unmask
