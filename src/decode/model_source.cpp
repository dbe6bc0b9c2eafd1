// model_logit_source: a LogitSource over the model's full-recompute forward.
//
// One forward call per score() call: every canvas is one sequence of the batch
// (seq_offsets), positions 0..L-1, and the LM head runs only on the rows that score
// the requested slots — logit_row_for_slot (Dream: slot p from row p - 1, slot 0 from
// row 0). The forward returns those rows in request order, which is already the
// [canvas][slot][vocab] layout. Borrows the model: it must outlive the source.
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
  return src;
}

}  // namespace unmask
