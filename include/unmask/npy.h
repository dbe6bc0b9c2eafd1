// unmask/npy.h — NumPy .npy files (format versions 1.0 and 2.0).
//
// Supported element types: little-endian float32 ('<f4'), int64 ('<i8'), int32 ('<i4'),
// C order only. An NpyArray owns its payload bytes (a copy of the file's data section);
// nothing here borrows. Readers validate the magic, the version, the header dict
// (exactly the keys descr / fortran_order / shape) and that shape x itemsize equals
// the payload size, and throw unmask::Error naming the file and the fault.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace unmask {

enum class NpyDType : uint8_t { kF32, kI32, kI64 };

size_t npy_itemsize(NpyDType t);
const char* npy_descr(NpyDType t);  // "<f4", "<i4", "<i8"

struct NpyArray {
  NpyDType dtype = NpyDType::kF32;
  std::vector<int64_t> shape;  // empty = a 0-d scalar (one element)
  std::vector<uint8_t> bytes;  // numel * itemsize, little-endian, C order

  int64_t numel() const;
  std::string shape_string() const;  // "[17, 55]"
  // Element copies. to_f32 needs kF32; to_i64 accepts kI64 and kI32 (widened).
  std::vector<float> to_f32() const;
  std::vector<int64_t> to_i64() const;
};

NpyArray npy_from_f32(const std::vector<float>& values, std::vector<int64_t> shape);
NpyArray npy_from_i64(const std::vector<int64_t>& values, std::vector<int64_t> shape);
NpyArray npy_from_i32(const std::vector<int32_t>& values, std::vector<int64_t> shape);

// Parses a whole .npy image; `label` names it in errors (usually the path).
NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& label);
NpyArray read_npy(const std::string& path);

// Version 1.0 when the header fits in 65535 bytes, else 2.0; header padded so the
// data starts at a multiple of 64 bytes (as numpy writes it).
std::vector<uint8_t> serialize_npy(const NpyArray& array);
void write_npy(const std::string& path, const NpyArray& array);

}  // namespace unmask
