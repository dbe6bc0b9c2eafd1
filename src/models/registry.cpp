#include "models/registry.h"

#include "unmask/error.h"

namespace unmask {

namespace {
const std::vector<const FamilyBinding*>& all_families() {
  static const std::vector<const FamilyBinding*> families = {&llada_family(),    &dream_family(), &lladamoe_family(),
                                                               &llada2_family(),   &sdar_family(),
                                                               &fast_dllm_v2_family()};
  return families;
}
}  // namespace

const FamilyBinding* family_by_name(const std::string& name) {
  for (const auto* f : all_families())
    if (name == f->name) return f;
  return nullptr;
}

const FamilyBinding& find_family(const JsonFields& config) {
  std::vector<std::string> archs;
  if (config.has("architectures")) {
    const auto& a = config.raw().at("architectures");
    if (a.is_array())
      for (const auto& v : a)
        if (v.is_string()) archs.push_back(v.get<std::string>());
  }
  const std::string model_type = config.string_or("model_type", "");
  for (const auto* f : all_families())
    for (const auto& arch : archs)
      for (const auto& known : f->architectures)
        if (arch == known) return *f;
  for (const auto* f : all_families())
    for (const auto& known : f->model_types)
      if (model_type == known) return *f;
  std::string known;
  for (const auto* f : all_families()) {
    for (const auto& a : f->architectures) known += (known.empty() ? "" : ", ") + a;
  }
  std::string found = archs.empty() ? std::string("none") : archs[0];
  throw Error(config.file() + ": unknown architecture '" + found + "' (model_type '" + model_type +
              "'); supported: " + known);
}

TensorView WeightBinder::checked(const std::string& name, std::initializer_list<int64_t> shape) {
  const TensorView t = store_.get(name);
  bool ok = t.ndim == int(shape.size());
  int i = 0;
  for (int64_t d : shape) ok = ok && t.dim(i++) == d;
  if (!ok) {
    TensorView want;
    want.ndim = int(shape.size());
    i = 0;
    for (int64_t d : shape) want.shape[size_t(i++)] = d;
    throw Error(store_.file_of(name) + ": tensor '" + name + "' has shape " + shape_string(t) + ", expected " +
                shape_string(want));
  }
  return t;
}

TensorView WeightBinder::matrix(const std::string& name, int64_t rows, int64_t cols) {
  TensorView t = checked(name, {rows, cols});
  if (t.dtype != DType::F32 && t.dtype != DType::BF16)
    throw Error(store_.file_of(name) + ": tensor '" + name + "' has dtype " + std::string(dtype_name(t.dtype)) +
                "; matmul weights must be F32 or BF16");
  if (!dtype_seen_) {
    matmul_dtype_ = t.dtype;
    dtype_seen_ = true;
  } else if (t.dtype != matmul_dtype_) {
    throw Error(store_.file_of(name) + ": tensor '" + name + "' is " + std::string(dtype_name(t.dtype)) +
                " but earlier weights are " + std::string(dtype_name(matmul_dtype_)) + "; mixed dtypes unsupported");
  }
  return t;
}

TensorView WeightBinder::vector(const std::string& name, int64_t n) {
  TensorView t = checked(name, {n});
  if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
    throw Error(store_.file_of(name) + ": tensor '" + name + "' has dtype " + std::string(dtype_name(t.dtype)) +
                "; expected a float type");
  return t;
}

}  // namespace unmask
