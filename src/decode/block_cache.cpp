#include "decode/block_cache.h"

#include <algorithm>

namespace unmask::decode {

namespace {

bool windowed(BlockCache policy) { return policy == BlockCache::kWindow || policy == BlockCache::kDelayed; }

// Rows recomputed before the block: one (a shifted family scores slot `start` from
// row start-1), or the refresh window.
int row_lead(BlockCache policy, int window) { return windowed(policy) ? std::max(window, 1) : 1; }

// Rows [begin, end) recomputed, the rest of [0, L) read from the cache.
CachedQuery window_query(int begin, int end, int L, bool store) {
  CachedQuery q;
  q.query_begin = begin;
  q.query_end = end;
  q.store_kv = store;
  if (begin > 0) q.cached_spans.emplace_back(0, begin);
  if (end < L) q.cached_spans.emplace_back(end, L);
  return q;
}

}  // namespace

CachedQuery block_step_query(BlockCache policy, bool full, int start, int end, int L, int window) {
  if (full) return window_query(0, L, L, true);
  const int begin = std::max(0, start - row_lead(policy, window));
  const int stop = policy == BlockCache::kPrefix ? L : policy == BlockCache::kDual ? end : std::min(L, end + window);
  return window_query(begin, stop, L, policy != BlockCache::kPrefix);
}

CachedQuery delayed_step_query(int lo, int hi, int L, int window) {
  return window_query(std::max(0, lo - std::max(window, 1)), std::min(L, hi + window), L, true);
}

CachedQuery grown_canvas_query(BlockCache policy, int prev_start, int L, int window) {
  return window_query(std::max(0, prev_start - row_lead(policy, window)), L, L, true);
}

}  // namespace unmask::decode
