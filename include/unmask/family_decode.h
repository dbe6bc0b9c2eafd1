// unmask/family_decode.h — the block-causal families' own decoders (llada2 / sdar /
// fast_dllm_v2 generate, unmask/decode.h) with their model-card settings, picked by the
// model's family. Borrows the model and the source for the call; owns nothing.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "unmask/decode.h"
#include "unmask/model.h"

namespace unmask {

// Settings a caller may override; the rest are the card's: block length = the model's
// attention block, steps = block length, llada2 with eos early stop, sdar
// low_confidence_dynamic stopping at eos / eot, fast_dllm_v2 threshold 0.9 with the block
// cache and sub-blocks of min(8, block).
struct FamilyDecodeOptions {
  std::optional<int> steps;
  double temperature = 0.0, top_p = 1.0;
  int top_k = 0;  // llada2 / sdar only
  uint64_t seed = 0;
};

// Prompt + at most gen_length answer ids (sdar and fast_dllm_v2 decode whole blocks: the
// canvas is cut after gen_length). `source` must attend in blocks of the model's attention
// block. Throws Error for a family without such a decoder.
std::vector<int32_t> family_reference_generate(const Model& model, const LogitSource& source,
                                               const std::vector<int32_t>& prompt, int gen_length,
                                               const FamilyDecodeOptions& options, const StepCallback& on_step = {});

}  // namespace unmask
