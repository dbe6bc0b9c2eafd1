// train/checkpoint.h — trainer checkpoints: an HF llada model folder plus the state to
// resume from.
//
//   config.json              llada family (LLaDAModelLM), loadable by load_model()
//   model.safetensors        model.transformer.* weights, F32 or BF16
//   tokenizer.json, tokenizer_config.json   copied from the tokenizer folder
//   training_state.json      next step, seed, shape and the run's options
//   training_state.safetensors   f32 master weights ("param.<name>") and AdamW moments
//                            ("adam_m.<name>", "adam_v.<name>")
// Data order and masks are counter-based in (seed, step) (train/rng.h), so step and seed
// are the whole RNG state and data cursor. Each file is written to "<name>.tmp" and
// renamed, so an interrupted save never leaves a truncated file under the real name.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/model.h"

namespace unmask::train {

struct CheckpointData {
  nlohmann::json state;  // training_state.json (must hold "step" and "shape")
  ParamLayout layout;
  std::vector<float> params, adam_m, adam_v;  // layout.total each
};

nlohmann::json shape_to_json(const ModelShape& s);
ModelShape shape_from_json(const nlohmann::json& j, const std::string& file);

// Writes the folder (created if needed). save_dtype: F32 or BF16 for model.safetensors.
void save_checkpoint(const std::string& dir, const CheckpointData& data, const std::string& tokenizer_dir,
                     const SpecialTokens& special, DType save_dtype);
// Reads training_state.json/.safetensors; throws Error naming the file and tensor.
CheckpointData load_checkpoint(const std::string& dir);

}  // namespace unmask::train
