// decode/canvas.h — canvas helpers shared by the reference decoders.
//
// A canvas here is the plain token vector [prompt | generated slots]; the decoders
// own it and lend it to the LogitSource and step callbacks for one call.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "unmask/decode.h"

namespace unmask::decode {

// Validates the prompt ids and mask id against src.vocab (throws Error naming the
// decoder and the value) and returns [prompt | `gen_length` x mask_id].
std::vector<int32_t> init_canvas(const LogitSource& src, const std::vector<int32_t>& prompt, int gen_length,
                                 int32_t mask_id, const std::string& decoder);

// Slots s < end holding mask_id, ascending.
std::vector<int32_t> masked_slots(const std::vector<int32_t>& canvas, int32_t mask_id, int end);
int count_masks(const std::vector<int32_t>& canvas, int32_t mask_id, int begin, int end);

// One model call: src.score, then checks that `out` holds
// [canvases][slots][vocab] floats (throws Error otherwise).
void query_logits(const LogitSource& src, const std::vector<std::vector<int32_t>>& canvases,
                  const std::vector<int32_t>& slots, std::vector<float>& out);

// Emits a StepEvent when `on_step` is set.
void emit_step(const StepCallback& on_step, int step, int total_steps, const std::vector<int32_t>& canvas,
               std::vector<int32_t> committed, int prompt_length, int32_t mask_id);

}  // namespace unmask::decode
