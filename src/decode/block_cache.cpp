#include "decode/block_cache.h"

#include <algorithm>

namespace unmask::decode {

namespace {

// Rows recomputed before the block: one (a shifted family scores slot `start` from
// row start-1), or the refresh window.
int row_lead(BlockCache policy, int window) { return policy == BlockCache::kWindow ? std::max(window, 1) : 1; }

}  // namespace

CachedQuery block_step_query(BlockCache policy, bool block_start, int start, int end, int L, int window) {
  CachedQuery q;
  if (block_start) {
    q.query_begin = 0;
    q.query_end = L;
    q.store_kv = true;
    return q;
  }
  const int lead = row_lead(policy, window);
  q.query_begin = std::max(0, start - lead);
  q.query_end = policy == BlockCache::kPrefix ? L : policy == BlockCache::kDual ? end : std::min(L, end + window);
  q.store_kv = policy != BlockCache::kPrefix;
  if (q.query_begin > 0) q.cached_spans.emplace_back(0, q.query_begin);
  if (q.query_end < L) q.cached_spans.emplace_back(q.query_end, L);
  return q;
}

CachedQuery grown_canvas_query(BlockCache policy, int prev_start, int L, int window) {
  CachedQuery q;
  q.query_begin = std::max(0, prev_start - row_lead(policy, window));
  q.query_end = L;
  q.store_kv = true;
  if (q.query_begin > 0) q.cached_spans.emplace_back(0, q.query_begin);
  return q;
}

}  // namespace unmask::decode
