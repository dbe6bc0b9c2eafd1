// batch_decode_step: many block-decoder jobs, one forward per step (unmask/batch_decode.h).
//
// Each job is a decode::BlockJob (the same state machine block_decode runs) plus its own
// KV cache. A step:
//   1. retires cancelled jobs, starts new ones (validation errors finish only that job),
//      and asks every other job for its next model call (BlockJob::prepare / query);
//   2. appends each job's call as one sequence of ONE ForwardBatch (append_query, the
//      same code model_logit_source uses): rows of all jobs concatenated, attention per
//      sequence over its fresh rows and its own cached spans, no padding;
//   3. runs the forward: every weight matrix is read once for all jobs' rows;
//   4. hands each job its logit rows (BlockJob::advance: commit, event, EOS check) and
//      prepares its next step, so a job that finished is marked done in this step.
#include "unmask/batch_decode.h"

#include <chrono>

#include "decode/block_job.h"
#include "decode/forward_query.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask {

namespace decode {

struct BatchJobState {
  BlockJob job;
  CanvasKv cache;
};

}  // namespace decode

namespace {

void finish(DecodeJob& j, FinishReason reason) {
  j.done = true;
  j.finish = reason;
  if (j.state) j.result = j.state->job.result();
}

void fail(DecodeJob& j, const std::string& message) {
  j.error = message;
  finish(j, FinishReason::kError);
}

// Validates the job against the model and creates its state.
void start(const Model& model, DecodeJob& j) {
  const ModelConfig& c = model.config;
  const std::string name = j.infill ? "block_infill" : "block_decode";
  check(!(j.infill && c.attention_block > 0),
        name + ": " + c.family + " attends block-causally (blocks of " + std::to_string(c.attention_block) +
            "): a slot cannot see the text after its block, so infilling is not supported");
  auto state = std::make_unique<decode::BatchJobState>(decode::BatchJobState{
      decode::BlockJob(c.vocab, j.prompt, j.options,
                       j.infill ? decode::BlockJob::Mode::kInfill : decode::BlockJob::Mode::kDecode, true, name),
      {}});
  const int64_t need = state->job.max_length();
  check(c.max_context <= 0 || need <= c.max_context,
        name + ": the canvas reaches " + std::to_string(need) + " positions, beyond the model's context of " +
            std::to_string(c.max_context));
  j.state = std::move(state);
}

// Prepares the job's next step; finishes it when there is none.
bool ready(DecodeJob& j) {
  if (j.state->job.prepare()) return true;
  finish(j, j.state->job.ended() ? FinishReason::kEndToken : FinishReason::kLength);
  return false;
}

}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kEndToken: return "end_token";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "?";
}

DecodeJob::DecodeJob() = default;
DecodeJob::~DecodeJob() = default;

int batch_decode_step(const Model& model, const std::vector<DecodeJob*>& jobs, BatchStepStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<DecodeJob*> active;
  for (DecodeJob* j : jobs) {
    if (j->done) continue;
    if (j->cancel.load()) {
      finish(*j, FinishReason::kCancelled);
      continue;
    }
    if (!j->state) {
      try {
        start(model, *j);
      } catch (const Error& e) {
        fail(*j, e.what());
        continue;
      }
      if (!ready(*j)) continue;
    }
    active.push_back(j);
  }

  ForwardBatch batch;
  for (DecodeJob* j : active) {
    decode::BatchJobState& s = *j->state;
    if (!s.job.full()) s.cache.fit(model.config, s.job.canvas());
    decode::append_query(model.config, s.job.canvas(), s.job.query(), s.job.full() ? nullptr : &s.cache, &batch,
                         "batch_decode_step");
  }
  ForwardOutput out;
  if (!active.empty()) {
    try {
      forward(model, batch, &out);
    } catch (const Error& e) {
      for (DecodeJob* j : active) fail(*j, e.what());
      throw;
    }
  }
  const size_t vocab = size_t(model.config.vocab);
  size_t row = 0;
  for (DecodeJob* j : active) {
    decode::BatchJobState& s = *j->state;
    if (!s.job.full()) decode::mark_stored(s.job.canvas(), s.job.query(), &s.cache);
    const size_t rows = s.job.query().slots.size();
    s.job.advance(out.logits.data() + row * vocab, j->on_step);
    row += rows;
    ++j->steps;
    ready(*j);
  }

  if (stats) {
    *stats = BatchStepStats{};
    stats->jobs = int(active.size());
    stats->query_rows = int(batch.tokens.size());
    stats->logit_rows = int(batch.logit_rows.size());
    stats->weight_bytes = out.weight_bytes;
    stats->flops = out.flops;
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  int left = 0;
  for (const DecodeJob* j : jobs) left += !j->done;
  return left;
}

void batch_decode_all(const Model& model, const std::vector<DecodeJob*>& jobs) {
  while (batch_decode_step(model, jobs) > 0) {
  }
}

}  // namespace unmask
