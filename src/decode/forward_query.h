// decode/forward_query.h — one canvas's model call as a sequence of a ForwardBatch.
//
// Shared by model_logit_source (one sequence per call) and batch_decode_step (one
// sequence per job, all in one forward), so a canvas is fed to the forward the same
// way on both paths and its logits are bit for bit the same.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "unmask/decode.h"
#include "unmask/model.h"

namespace unmask::decode {

// A canvas's KV cache and, per position, the token its stored row was computed for.
// Owns both.
struct CanvasKv {
  KvCache kv;
  std::vector<int32_t> stored;  // [kv.capacity] token id of the stored row, -1 = none since the reset
  // Fits the cache to `canvas` before a call. The same length: unchanged. Longer (dynamic
  // length grew the canvas): the cache grows and keeps the rows whose position still
  // holds the token they were stored for; the others are dropped. Shorter, or made for
  // another model: reset (nothing stored).
  void fit(const ModelConfig& config, const std::vector<int32_t>& canvas);
};

// Appends `canvas`'s rows [query.query_begin, query.query_end) as one sequence of
// `batch` (tokens, positions = canvas positions, seq_offsets, one kv entry) and the
// hidden rows that score query.slots to batch->logit_rows, in slot order: slot s from
// row logit_row_for_slot(s), or from row s itself when that row lies before the window
// (see CachedQuery). `cache` may be null only for a query with no cached spans and no
// store_kv. Throws Error (prefixed by `name`) when the window, a span or a slot is out
// of range, or a span reads a position no call has stored. batch->seq_offsets must be
// empty (it is started) or end at batch->tokens.size().
void append_query(const ModelConfig& config, const std::vector<int32_t>& canvas, const CachedQuery& query,
                  CanvasKv* cache, ForwardBatch* batch, const std::string& name);

// After the forward: records the window's tokens as stored when query.store_kv.
void mark_stored(const std::vector<int32_t>& canvas, const CachedQuery& query, CanvasKv* cache);

}  // namespace unmask::decode
