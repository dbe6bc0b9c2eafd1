// model_logit_source: a LogitSource over the model's forward.
//
// score: one forward per call; every canvas is one sequence of the batch, positions
// 0..L-1, and the LM head runs only on the rows that score the requested slots —
// logit_row_for_slot (Dream: slot p from row p - 1, slot 0 from row 0). The forward
// returns those rows in request order, which is already the [canvas][slot][vocab]
// layout. Borrows the model: it must outlive the source.
//
// score_cached: one forward over the query window's rows at their absolute positions,
// attending to the source's KV cache (shared_ptr owned by the lambda, so copies of the
// source share it) for the cached spans. The cache follows the canvas (CanvasKv::fit:
// a longer canvas keeps the rows whose token is unchanged, a shorter one resets it), and
// reading a position with no stored row is an error instead of silently attending to
// zeros. Both paths build their sequence with decode::append_query, as batch_decode_step
// does, so a canvas gets the same logits alone and batched.
#include <memory>

#include "decode/forward_query.h"
#include "unmask/decode.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask {

namespace {

void run_forward(const Model& m, const ForwardBatch& batch, std::vector<float>& out) {
  ForwardOutput result;
  forward(m, batch, &result);
  const size_t want = batch.logit_rows.size() * size_t(m.config.vocab);
  check(result.logits.size() == want, "model_logit_source: forward returned " + std::to_string(result.logits.size()) +
                                          " logits, expected " + std::to_string(want));
  out = std::move(result.logits);
}

}  // namespace

LogitSource model_logit_source(const Model& model, const LogitSourceOptions& options) {
  LogitSource src;
  src.vocab = model.config.vocab;
  const Model* m = &model;
  const bool precise = options.reference_precision;
  const int block = options.attention_block;
  src.attention_block = block;
  src.score = [m, precise, block](const std::vector<std::vector<int32_t>>& canvases, const std::vector<int32_t>& slots,
                  std::vector<float>& out) {
    out.clear();
    if (canvases.empty() || slots.empty()) return;  // nothing can change: skip the forward
    const int L = int(canvases[0].size());
    ForwardBatch batch;
    batch.reference_precision = precise;
    batch.attention_block = block;
    for (size_t c = 0; c < canvases.size(); ++c) {
      check(int(canvases[c].size()) == L, "model_logit_source: canvas " + std::to_string(c) + " has length " +
                                              std::to_string(canvases[c].size()) + ", canvas 0 has " +
                                              std::to_string(L));
      decode::append_query(m->config, canvases[c], CachedQuery{0, L, {}, false, slots}, nullptr, &batch,
                           "model_logit_source");
    }
    run_forward(*m, batch, out);
  };

  auto cache = std::make_shared<decode::CanvasKv>();
  src.score_cached = [m, precise, block, cache](const std::vector<int32_t>& canvas, const CachedQuery& q,
                                                std::vector<float>& out) {
    out.clear();
    cache->fit(m->config, canvas);
    ForwardBatch batch;
    batch.reference_precision = precise;
    batch.attention_block = block;
    decode::append_query(m->config, canvas, q, cache.get(), &batch, "model_logit_source: cached query");
    // Nothing to score and nothing to store: the call cannot change anything.
    if (q.slots.empty() && !q.store_kv && !q.next_token_row) return;
    run_forward(*m, batch, out);
    decode::mark_stored(canvas, q, cache.get());
  };
  return src;
}

}  // namespace unmask
