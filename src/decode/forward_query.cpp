#include "decode/forward_query.h"

#include <algorithm>

#include "unmask/error.h"

namespace unmask::decode {

void CanvasKv::fit(const ModelConfig& config, const std::vector<int32_t>& canvas) {
  const int positions = int(canvas.size());
  const int kv_dim = config.n_kv_heads * config.head_dim;
  if (kv.n_layers != config.n_layers || kv.kv_dim != kv_dim || kv.capacity > positions) {
    kv.reset(config, positions);
    stored.assign(size_t(positions), -1);
    return;
  }
  if (kv.capacity == positions) return;
  // Layout [n_layers, capacity, kv_dim]: each layer's rows move to the new stride.
  KvCache grown;
  grown.reset(config, positions);
  for (int l = 0; l < kv.n_layers; ++l)
    for (int p = 0; p < kv.capacity; ++p) {
      std::copy_n(kv.k_row(l, p), kv_dim, grown.k_row(l, p));
      std::copy_n(kv.v_row(l, p), kv_dim, grown.v_row(l, p));
    }
  kv = std::move(grown);
  for (size_t p = 0; p < stored.size(); ++p)
    if (stored[p] != canvas[p]) stored[p] = -1;
  stored.resize(size_t(positions), -1);
}

void append_query(const ModelConfig& config, const std::vector<int32_t>& canvas, const CachedQuery& q,
                  CanvasKv* cache, ForwardBatch* batch, const std::string& name) {
  const int L = int(canvas.size());
  check(0 <= q.query_begin && q.query_begin < q.query_end && q.query_end <= L,
        name + " rows [" + std::to_string(q.query_begin) + ", " + std::to_string(q.query_end) +
            ") are not a non-empty range inside the canvas of " + std::to_string(L));
  check(cache || (q.cached_spans.empty() && !q.store_kv), name + ": a cached query needs a KV cache");
  for (auto [lo, hi] : q.cached_spans) {
    check(0 <= lo && lo <= hi && hi <= L && (hi <= q.query_begin || lo >= q.query_end),
          name + ": cached span [" + std::to_string(lo) + ", " + std::to_string(hi) +
              ") is outside the canvas or overlaps the query rows");
    for (int p = lo; p < hi; ++p)
      check(p < int(cache->stored.size()) && cache->stored[size_t(p)] >= 0,
            name + ": cached position " + std::to_string(p) + " holds no stored row (no store_kv call covered it, or the canvas grew and its token changed)");
  }
  if (batch->seq_offsets.empty()) batch->seq_offsets.push_back(int32_t(batch->tokens.size()));
  const int32_t base = int32_t(batch->tokens.size());
  for (int p = q.query_begin; p < q.query_end; ++p) {
    batch->tokens.push_back(canvas[size_t(p)]);
    batch->positions.push_back(p);
  }
  batch->seq_offsets.push_back(int32_t(batch->tokens.size()));
  for (int32_t slot : q.slots) {
    check(slot >= q.query_begin && slot < q.query_end, name + ": slot " + std::to_string(slot) +
                                                           " is outside the query rows [" +
                                                           std::to_string(q.query_begin) + ", " +
                                                           std::to_string(q.query_end) + ")");
    // The window's own shift: a row before the window is not computed, the slot's own row scores it.
    const int row = logit_row_for_slot(config, slot);
    batch->logit_rows.push_back(base + (row < q.query_begin ? slot : row) - q.query_begin);
  }
  if (q.next_token_row) batch->logit_rows.push_back(base + q.query_end - 1 - q.query_begin);
  batch->kv.push_back(SequenceKv{cache ? &cache->kv : nullptr, q.cached_spans, q.store_kv});
}

void mark_stored(const std::vector<int32_t>& canvas, const CachedQuery& q, CanvasKv* cache) {
  if (!q.store_kv) return;
  for (int p = q.query_begin; p < q.query_end; ++p) cache->stored[size_t(p)] = canvas[size_t(p)];
}

}  // namespace unmask::decode
