#include "decode/block_cache.h"

#include <algorithm>

namespace unmask::decode {

CachedQuery block_step_query(BlockCache policy, bool block_start, int start, int end, int L, int window) {
  CachedQuery q;
  if (block_start) {
    q.query_begin = 0;
    q.query_end = L;
    q.store_kv = true;
    return q;
  }
  // One row before the block: a shifted family (Dream) scores slot `start` from row
  // start-1, which must be computed in this call to see the block's current tokens.
  const int lead = policy == BlockCache::kWindow ? std::max(window, 1) : 1;
  q.query_begin = std::max(0, start - lead);
  q.query_end = policy == BlockCache::kPrefix ? L : policy == BlockCache::kDual ? end : std::min(L, end + window);
  q.store_kv = policy != BlockCache::kPrefix;
  if (q.query_begin > 0) q.cached_spans.emplace_back(0, q.query_begin);
  if (q.query_end < L) q.cached_spans.emplace_back(q.query_end, L);
  return q;
}

}  // namespace unmask::decode
