// GGUF writer: header, key-values and tensor infos first (sizes are known from the
// shapes), then each tensor's bytes at its aligned offset. Producers run one at a time,
// so a quantized copy of a whole model is never held in memory.
#include <algorithm>
#include <cstring>
#include <fstream>

#include "unmask/error.h"
#include "unmask/gguf.h"

namespace unmask {

namespace {

constexpr uint64_t kAlignment = 32;  // the GGUF default; general.alignment is not written

class Out {
 public:
  explicit Out(const std::string& path) : path_(path), f_(path, std::ios::binary | std::ios::trunc) {
    if (!f_) throw Error(path + ": cannot open for writing");
  }
  template <class T>
  void put(T v) {
    bytes(&v, sizeof v);
  }
  void bytes(const void* p, size_t n) {
    f_.write(static_cast<const char*>(p), std::streamsize(n));
    pos_ += n;
  }
  void string(const std::string& s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const char zeros[64] = {};
    while (pos_ % alignment) bytes(zeros, size_t(std::min<uint64_t>(alignment - pos_ % alignment, sizeof zeros)));
  }
  void finish() {
    f_.flush();
    if (!f_) throw Error(path_ + ": write failed (disk full?)");
  }

 private:
  std::string path_;
  std::ofstream f_;
  uint64_t pos_ = 0;
};

void put_value(Out& o, const GgufValue& v, const std::string& key) {
  switch (v.type) {
    case GgufType::kU8: o.put<uint8_t>(uint8_t(v.i)); return;
    case GgufType::kI8: o.put<int8_t>(int8_t(v.i)); return;
    case GgufType::kU16: o.put<uint16_t>(uint16_t(v.i)); return;
    case GgufType::kI16: o.put<int16_t>(int16_t(v.i)); return;
    case GgufType::kU32: o.put<uint32_t>(uint32_t(v.i)); return;
    case GgufType::kI32: o.put<int32_t>(int32_t(v.i)); return;
    case GgufType::kU64: o.put<uint64_t>(uint64_t(v.i)); return;
    case GgufType::kI64: o.put<int64_t>(v.i); return;
    case GgufType::kF32: o.put<float>(float(v.f)); return;
    case GgufType::kF64: o.put<double>(v.f); return;
    case GgufType::kBool: o.put<uint8_t>(v.i ? 1 : 0); return;
    case GgufType::kString: o.string(v.str); return;
    case GgufType::kArray:
      o.put<uint32_t>(uint32_t(v.elem_type));
      o.put<uint64_t>(v.items.size());
      for (const GgufValue& item : v.items) {
        if (item.type != v.elem_type)
          throw Error("gguf write: key '" + key + "' mixes " + gguf_type_name(item.type) + " into an array of " +
                      gguf_type_name(v.elem_type));
        put_value(o, item, key);
      }
      return;
  }
}

size_t shape_bytes(DType dtype, const std::vector<int64_t>& shape, const std::string& name) {
  if (shape.empty() || shape.size() > size_t(kMaxDims))
    throw Error("gguf write: tensor '" + name + "' must have 1 to 4 dims");
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d <= 0) throw Error("gguf write: tensor '" + name + "' has a dim <= 0");
    numel *= d;
  }
  if (shape.back() % dtype_block_elems(dtype) != 0)
    throw Error("gguf write: tensor '" + name + "' rows of " + std::to_string(shape.back()) +
                " are not whole " + std::string(dtype_name(dtype)) + " blocks");
  return dtype_row_bytes(dtype, numel);
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& [k, v] : kvs_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  kvs_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data) {
  shape_bytes(dtype, shape, name);
  tensors_.push_back({name, dtype, std::move(shape), data, {}});
}

void GgufWriter::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape, Producer produce) {
  shape_bytes(dtype, shape, name);
  tensors_.push_back({name, dtype, std::move(shape), nullptr, std::move(produce)});
}

void GgufWriter::write(const std::string& path, const std::function<void(size_t, size_t)>& on_tensor) const {
  Out o(path);
  o.bytes("GGUF", 4);
  o.put<uint32_t>(3);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(kvs_.size());
  for (const auto& [key, value] : kvs_) {
    o.string(key);
    o.put<uint32_t>(uint32_t(value.type));
    put_value(o, value, key);
  }
  uint64_t offset = 0;
  std::vector<size_t> sizes;
  for (const Pending& t : tensors_) {
    o.string(t.name);
    o.put<uint32_t>(uint32_t(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) o.put<uint64_t>(uint64_t(*it));  // ggml: fastest first
    o.put<uint32_t>(dtype_to_ggml_type(t.dtype));
    o.put<uint64_t>(offset);
    sizes.push_back(shape_bytes(t.dtype, t.shape, t.name));
    offset += (sizes.back() + kAlignment - 1) / kAlignment * kAlignment;
  }
  o.pad_to(kAlignment);
  std::vector<uint8_t> produced;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Pending& t = tensors_[i];
    if (t.produce) {
      produced.clear();
      t.produce(produced);
      if (produced.size() != sizes[i])
        throw Error("gguf write: tensor '" + t.name + "' produced " + std::to_string(produced.size()) +
                    " bytes, expected " + std::to_string(sizes[i]));
      o.bytes(produced.data(), produced.size());
    } else {
      o.bytes(t.data, sizes[i]);
    }
    o.pad_to(kAlignment);
    if (on_tensor) on_tensor(i + 1, tensors_.size());
  }
  o.finish();
}

}  // namespace unmask
