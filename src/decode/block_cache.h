// decode/block_cache.h — which rows a block-decoder step recomputes, per cache policy.
//
// Positional only: the active block is [start, end) of a canvas of length L, whatever
// lies around it (the prompt, finished blocks, trailing masks of a fixed canvas, or the
// text and later holes of an infill canvas). See BlockCache in unmask/decode.h and
// docs/cache-policies.md. Pure functions: nothing owned, nothing borrowed.
#pragma once
#include "unmask/decode.h"

namespace unmask::decode {

// The cached call of one step (policy != kNone). `full`: the block's first call, or a
// periodic refresh (BlockDecoderOptions::refresh_every), a forward over [0, L) that
// stores every row's K/V (it also (re)fills a cache the source reset because the canvas
// grew). Other calls (window [b, e), rows outside it read from the cache):
//   kPrefix:  [start-1, L), nothing stored;
//   kDual:    [start-1, end), stored;
//   kWindow:  [start-max(W,1), end+W) clamped to [0, L), stored;
//   kDelayed: as kWindow around [start, end) (delayed_step_query narrows it).
// `slots` is left empty for the caller.
CachedQuery block_step_query(BlockCache policy, bool full, int start, int end, int L, int window);

// kDelayed after a block's first call: rows [lo-max(W,1), hi+W) clamped to [0, L),
// stored, where [lo, hi) is the smallest range holding the block's masked slots and the
// slots the previous step committed. Block slots outside it were committed two or more
// steps ago, and the step after their commit recomputed and stored them with their
// token, so the cache already holds their committed K/V (delayed caching).
CachedQuery delayed_step_query(int lo, int hi, int L, int window);

// Dynamic length, the first call of a block appended to the canvas (policy != kNone):
// the cache keeps what earlier calls stored. Rows [b, L) are recomputed and stored,
// b = prev_start - lead (lead = 1, or max(W, 1) for kWindow / kDelayed; clamped at 0),
// so the finished block — whose last commits were stored while they were still masks —
// is refreshed along with the new block; [0, b) is read from the cache.
CachedQuery grown_canvas_query(BlockCache policy, int prev_start, int L, int window);

}  // namespace unmask::decode
