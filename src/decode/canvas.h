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

// Decoders that loop until a block has no mask declare the block stuck after this many
// calls per block slot (only reachable when sampling at T > 0 keeps drawing the mask
// id; at T = 0 a call that changes nothing is detected at once).
inline constexpr int kMaxCallsPerBlockSlot = 1000;

// Validates the prompt ids and mask id against src.vocab (throws Error naming the
// decoder and the value) and returns [prompt | `gen_length` x mask_id].
std::vector<int32_t> init_canvas(const LogitSource& src, const std::vector<int32_t>& prompt, int gen_length,
                                 int32_t mask_id, const std::string& decoder);

// Slots s < end holding mask_id, ascending.
std::vector<int32_t> masked_slots(const std::vector<int32_t>& canvas, int32_t mask_id, int end);
// Slots begin <= s < end holding mask_id, ascending.
std::vector<int32_t> masked_slots_between(const std::vector<int32_t>& canvas, int32_t mask_id, int begin, int end);
int count_masks(const std::vector<int32_t>& canvas, int32_t mask_id, int begin, int end);

// One model call: src.score, then checks that `out` holds
// [canvases][slots][vocab] floats (throws Error otherwise).
void query_logits(const LogitSource& src, const std::vector<std::vector<int32_t>>& canvases,
                  const std::vector<int32_t>& slots, std::vector<float>& out);

// One cached model call: src.score_cached (throws Error naming `decoder` when the
// source has none), then checks that `out` holds [query.slots][vocab] floats.
void query_logits_cached(const LogitSource& src, const std::vector<int32_t>& canvas, const CachedQuery& query,
                         std::vector<float>& out, const std::string& decoder);

// Emits a StepEvent when `on_step` is set.
void emit_step(const StepCallback& on_step, int step, int total_steps, const std::vector<int32_t>& canvas,
               std::vector<int32_t> committed, int prompt_length, int32_t mask_id);

// The cached call inside a Fast-dLLM block (LLaDA and Dream alike): prefix cache
// recomputes [start, L) reading [0, start); dual cache recomputes [start, end) reading
// [0, start) and [end, L), and writes the block's rows back as upstream's in-place
// replace does (they are recomputed by every call anyway).
CachedQuery fast_dllm_block_query(CachePolicy cache, int start, int end, int L);

}  // namespace unmask::decode
