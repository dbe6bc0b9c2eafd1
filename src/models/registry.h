// models/registry.h — the table of model families. A family is a config reader
// (config.json fields -> ModelConfig) and a weight binder (tensor names ->
// ModelWeights); the forward is shared (models/forward.cpp).
#pragma once
#include <string>
#include <vector>

#include "io/json_file.h"
#include "unmask/model.h"

namespace unmask {

// Binds named tensors with shape and dtype checks; errors name file and tensor.
// Borrows the store; the returned views point into its mappings.
class WeightBinder {
 public:
  explicit WeightBinder(const TensorStore& store) : store_(store) {}
  // A matmul weight [rows, cols]; all matmul weights of a model must share one dtype (F32 or BF16).
  TensorView matrix(const std::string& name, int64_t rows, int64_t cols);
  // A 1-D f32/bf16/f16 vector (norm weights, biases).
  TensorView vector(const std::string& name, int64_t n);
  bool has(const std::string& name) const { return store_.has(name); }
  DType matmul_dtype() const { return matmul_dtype_; }

 private:
  TensorView checked(const std::string& name, std::initializer_list<int64_t> shape);
  const TensorStore& store_;
  DType matmul_dtype_ = DType::F32;
  bool dtype_seen_ = false;
};

struct FamilyBinding {
  const char* name;                      // "llada", "dream"
  std::vector<std::string> architectures;  // config.json "architectures" values
  std::vector<std::string> model_types;    // config.json "model_type" values
  void (*read_config)(const JsonFields& config, ModelConfig& out);
  void (*bind_weights)(WeightBinder& binder, const ModelConfig& config, ModelWeights& out);
};

const FamilyBinding& llada_family();
const FamilyBinding& dream_family();

// Picks the family by architectures[0], falling back to model_type.
// Throws Error naming the values found and the families known.
const FamilyBinding& find_family(const JsonFields& config);
const FamilyBinding* family_by_name(const std::string& name);

}  // namespace unmask
