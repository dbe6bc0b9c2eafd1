// model_logit_source: a LogitSource over the model's full-recompute forward.
//
// One forward call per score() call: every canvas is one sequence of the batch
// (seq_offsets), positions 0..L-1, and the LM head runs only on the rows that score
// the requested slots — logit_row_for_slot (Dream: slot p from row p - 1, slot 0 from
// row 0). The forward returns those rows in request order, which is already the
// [canvas][slot][vocab] layout. Borrows the model: it must outlive the source.
//
// score_cached: one forward over the query window's rows at their absolute positions,
// attending to the source's KV cache (shared_ptr owned by the lambda, so copies of the
// source share it) for the cached spans. The cache is sized to the canvas; `filled`
// marks positions some call has written since the last reset, so reading a span no
// call has stored is an error instead of silently attending to zeros.
#include <memory>

#include "unmask/decode.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask {

LogitSource model_logit_source(const Model& model, const LogitSourceOptions& options) {
  LogitSource src;
  src.vocab = model.config.vocab;
  const Model* m = &model;
  const bool precise = options.reference_precision;
  src.score = [m, precise](const std::vector<std::vector<int32_t>>& canvases, const std::vector<int32_t>& slots,
                  std::vector<float>& out) {
    out.clear();
    if (canvases.empty() || slots.empty()) return;  // nothing can change: skip the forward
    const int L = int(canvases[0].size());
    ForwardBatch batch;
    batch.reference_precision = precise;
    batch.seq_offsets.push_back(0);
    for (size_t c = 0; c < canvases.size(); ++c) {
      check(int(canvases[c].size()) == L, "model_logit_source: canvas " + std::to_string(c) + " has length " +
                                              std::to_string(canvases[c].size()) + ", canvas 0 has " +
                                              std::to_string(L));
      batch.tokens.insert(batch.tokens.end(), canvases[c].begin(), canvases[c].end());
      for (int p = 0; p < L; ++p) batch.positions.push_back(p);
      batch.seq_offsets.push_back(int32_t(batch.tokens.size()));
      for (int32_t slot : slots) {
        check(slot >= 0 && slot < L, "model_logit_source: slot " + std::to_string(slot) + " is outside the canvas of " +
                                         std::to_string(L));
        batch.logit_rows.push_back(int32_t(c) * L + logit_row_for_slot(m->config, slot));
      }
    }
    ForwardOutput result;
    forward(*m, batch, &result);
    const size_t want = batch.logit_rows.size() * size_t(m->config.vocab);
    check(result.logits.size() == want, "model_logit_source: forward returned " + std::to_string(result.logits.size()) +
                                            " logits, expected " + std::to_string(want));
    out = std::move(result.logits);
  };

  struct CacheState {
    KvCache kv;
    std::vector<uint8_t> filled;  // [capacity] 1 = written since the last reset
  };
  auto state = std::make_shared<CacheState>();
  src.score_cached = [m, precise, state](const std::vector<int32_t>& canvas, const CachedQuery& q,
                                         std::vector<float>& out) {
    out.clear();
    const int L = int(canvas.size());
    const std::string name = "model_logit_source: cached query";
    check(0 <= q.query_begin && q.query_begin < q.query_end && q.query_end <= L,
          name + " rows [" + std::to_string(q.query_begin) + ", " + std::to_string(q.query_end) +
              ") are not a non-empty range inside the canvas of " + std::to_string(L));
    if (state->kv.capacity != L || state->kv.n_layers != m->config.n_layers) {
      state->kv.reset(m->config, L);
      state->filled.assign(size_t(L), 0);
    }
    for (auto [lo, hi] : q.cached_spans) {
      check(0 <= lo && lo <= hi && hi <= L && (hi <= q.query_begin || lo >= q.query_end),
            name + ": cached span [" + std::to_string(lo) + ", " + std::to_string(hi) +
                ") is outside the canvas or overlaps the query rows");
      for (int p = lo; p < hi; ++p)
        check(state->filled[size_t(p)] != 0,
              name + ": cached position " + std::to_string(p) + " was never stored (no store_kv call covered it)");
    }
    // Nothing to score and nothing to store: the call cannot change anything.
    if (q.slots.empty() && !q.store_kv) return;
    ForwardBatch batch;
    batch.reference_precision = precise;
    for (int p = q.query_begin; p < q.query_end; ++p) {
      batch.tokens.push_back(canvas[size_t(p)]);
      batch.positions.push_back(p);
    }
    for (int32_t slot : q.slots) {
      check(slot >= q.query_begin && slot < q.query_end, name + ": slot " + std::to_string(slot) +
                                                             " is outside the query rows [" +
                                                             std::to_string(q.query_begin) + ", " +
                                                             std::to_string(q.query_end) + ")");
      // The window's own shift: a row before the window is not computed, the slot's own row scores it.
      const int row = logit_row_for_slot(m->config, slot);
      batch.logit_rows.push_back((row < q.query_begin ? slot : row) - q.query_begin);
    }
    batch.kv = {SequenceKv{&state->kv, q.cached_spans, q.store_kv}};
    ForwardOutput result;
    forward(*m, batch, &result);
    if (q.store_kv)
      for (int p = q.query_begin; p < q.query_end; ++p) state->filled[size_t(p)] = 1;
    const size_t want = batch.logit_rows.size() * size_t(m->config.vocab);
    check(result.logits.size() == want, "model_logit_source: forward returned " + std::to_string(result.logits.size()) +
                                            " logits, expected " + std::to_string(want));
    out = std::move(result.logits);
  };
  return src;
}

}  // namespace unmask
