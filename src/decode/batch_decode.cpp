// batch_decode_step: many block-decoder jobs, one forward per step (unmask/batch_decode.h).
//
// Each job is a decode::BlockJob (the same state machine block_decode runs) plus its own
// KV cache. A step:
//   1. retires cancelled jobs, starts new ones (validation errors finish only that job),
//      and asks every other job for its next model call (BlockJob::prepare / query);
//   2. appends each job's call as one sequence of ONE ForwardBatch (append_query, the
//      same code model_logit_source uses): rows of all jobs concatenated, attention per
//      sequence over its fresh rows and its own cached spans, no padding;
//   3. runs the forward: every weight matrix is read once for all jobs' rows (or, when the
//      jobs split evenly, one single-threaded forward per thread over its group of jobs);
//   4. hands each job its logit rows (BlockJob::score / advance_scored: scores, commit,
//      event, EOS check) and prepares its next step, on the thread that ran the job's
//      forward, so a job that finished is marked done in this step.
#include "unmask/batch_decode.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>

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

std::vector<std::vector<size_t>> split_into_groups(const std::vector<int>& rows, int threads) {
  const size_t n = rows.size();
  std::vector<std::vector<size_t>> one(n == 0 ? 0 : 1);
  for (size_t i = 0; i < n; ++i) one[0].push_back(i);
  const size_t g_count = std::min(n, size_t(std::max(threads, 1)));
  if (g_count < 2) return one;
  // Longest first onto the lightest group (LPT), then each group back in job order.
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rows[a] > rows[b]; });
  std::vector<std::vector<size_t>> groups(g_count);
  std::vector<int64_t> load(g_count, 0);
  int64_t total = 0;
  for (size_t i : order) {
    const size_t g = size_t(std::min_element(load.begin(), load.end()) - load.begin());
    groups[g].push_back(i);
    load[g] += rows[i];
    total += rows[i];
  }
  for (auto& g : groups) std::sort(g.begin(), g.end());
  // A split is worth it only when balanced: a thread that waits on another's forward
  // wastes more than the fork/joins of one shared forward cost. The heaviest group may
  // carry at most 30% more rows than an even share (for two threads: 65% of the rows).
  const int64_t heaviest = *std::max_element(load.begin(), load.end());
  if (double(heaviest) * double(g_count) > 1.3 * double(total)) return one;
  return groups;
}

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

  // One forward per group of jobs (one group unless split_into_groups finds a balanced
  // split, then one group per thread, each forward on its own thread).
  std::vector<int> rows_of(active.size());
  for (size_t i = 0; i < active.size(); ++i) {
    const CachedQuery& q = active[i]->state->job.query();
    rows_of[i] = q.query_end - q.query_begin;
  }
  const std::vector<std::vector<size_t>> groups = split_into_groups(rows_of, omp_get_max_threads());
  std::vector<ForwardBatch> batches(groups.size());
  std::vector<ForwardOutput> outs(groups.size());
  std::vector<std::pair<size_t, size_t>> where(active.size());  // job -> (group, first logit row)
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i : groups[g]) {
      decode::BatchJobState& s = *active[i]->state;
      if (!s.job.full()) s.cache.fit(model.config, s.job.canvas());
      where[i] = {g, batches[g].logit_rows.size()};
      decode::append_query(model.config, s.job.canvas(), s.job.query(), s.job.full() ? nullptr : &s.cache,
                           &batches[g], "batch_decode_step");
    }
  // After a group's forward, each of its jobs takes its logit rows — row scores, commits,
  // the step event (on_step), its next step prepared — on the thread that ran the forward:
  // all of it is the job's own state, so jobs of different groups proceed concurrently.
  const size_t vocab = size_t(model.config.vocab);
  std::vector<std::string> forward_errors(groups.size()), job_errors(active.size());
  auto take_logits = [&](size_t i) {
    DecodeJob* j = active[i];
    decode::BatchJobState& s = *j->state;
    try {
      const float* logits = outs[where[i].first].logits.data() + where[i].second * vocab;
      if (!s.job.full()) decode::mark_stored(s.job.canvas(), s.job.query(), &s.cache);
      s.job.advance_scored(logits, s.job.score(logits, false), j->on_step);
      ++j->steps;
      ready(*j);
    } catch (const std::exception& e) {  // nothing may leave the parallel regions below
      job_errors[i] = e.what();
    }
  };
  auto run_group = [&](int g, bool take_here) {
    try {
      forward(model, batches[size_t(g)], &outs[size_t(g)]);
    } catch (const std::exception& e) {
      forward_errors[size_t(g)] = e.what();
      return;
    }
    if (take_here)
      for (size_t i : groups[size_t(g)]) take_logits(i);
  };
  const int n_groups = int(groups.size());
  if (n_groups == 1) {
    run_group(0, false);  // every thread works inside this one forward's ops
    if (forward_errors[0].empty()) {
      // The jobs over the threads in one parallel region (one fork per step, not per job).
#pragma omp parallel for schedule(dynamic, 1)
      for (size_t i = 0; i < active.size(); ++i) take_logits(i);
    }
  } else if (n_groups > 1) {
    // One forward per thread; their ops see an active region and stay on their thread.
#pragma omp parallel for num_threads(n_groups) schedule(static, 1)
    for (int g = 0; g < n_groups; ++g) run_group(g, true);
  }
  for (const std::string& e : forward_errors)
    if (!e.empty()) {
      for (DecodeJob* j : active)
        if (!j->done) fail(*j, e);
      throw Error(e);
    }
  for (size_t i = 0; i < active.size(); ++i)
    if (!job_errors[i].empty()) fail(*active[i], job_errors[i]);

  if (stats) {
    *stats = BatchStepStats{};
    stats->jobs = int(active.size());
    stats->forwards = n_groups;
    for (size_t g = 0; g < groups.size(); ++g) {
      stats->query_rows += int(batches[g].tokens.size());
      stats->logit_rows += int(batches[g].logit_rows.size());
      stats->weight_bytes += outs[g].weight_bytes;
      stats->flops += outs[g].flops;
    }
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
