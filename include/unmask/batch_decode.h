// unmask/batch_decode.h — batched canvases for the block decoder (continuous batching).
//
// Several canvases ("jobs") of different prompt lengths and options advance together.
// One call of batch_decode_step() makes ONE model forward over the concatenated query
// rows of every active job — per-job variable-length attention, no padding, each job
// attending to its own KV cache — so the weight bytes read per step do not grow with the
// number of jobs. Then every job scores its own rows, commits, and emits its StepEvent.
// With several threads and jobs whose rows split evenly (split_into_groups), the step
// instead runs one forward per thread over its share of the jobs, each on its own thread:
// small-model steps then keep every core busy without a fork/join per op (the weights
// are read once per thread, which at these sizes stay in cache).
// The decoding itself is block_decode / block_infill's (unmask/decode.h): a job is the
// same state machine those functions run, fed by a batched forward instead of a
// LogitSource; a batch of one is exactly block_decode.
//
// A server loop (continuous batching; requests join and leave at step boundaries):
//
//   std::vector<DecodeJob*> active;
//   for (;;) {
//     admit: active.push_back(job)                  // any time between steps
//     batch_decode_step(model, active);              // one forward for all of them
//     retire: jobs with job->done (finish, result)   // remove them from `active`
//   }
//
// Ownership: the caller owns every DecodeJob (neither copyable nor movable; the step
// holds pointers only for the duration of the call). A job owns its canvas, its RNG
// (seeded from options.seed) and its KV cache. batch_decode_step borrows the model.
// Threading: batch_decode_step and every read of a job's outputs run on one thread (the
// StepCallback is invoked on it); only `cancel` may be set from any thread.
// Determinism: a job's canvas, events and result depend only on its own prompt and
// options — bit for bit the same as block_decode / block_infill over
// model_logit_source(model), whatever other jobs share its steps, when they join or
// leave, and whatever their seeds (tests/test_batch_decode.cpp). This holds because
// every per-row kernel (matmul, norms, RoPE) computes a row the same way whichever other
// rows are in the call (tests/test_matmul.cpp, row independence), and attention is per job.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "unmask/decode.h"

namespace unmask {

struct Model;
namespace decode {
struct BatchJobState;  // the job's decoding state machine and KV cache (src/decode/batch_decode.cpp)
}

enum class FinishReason {
  kNone,       // not finished
  kEndToken,   // an end token (options.end_ids) was committed with no mask before it
  kLength,     // every slot decoded: max_tokens / gen_length reached, or every hole filled
  kCancelled,  // `cancel` was set; the result holds the canvas as it was
  kError,      // invalid request (options, ids, context length): see `error`
};
const char* finish_reason_name(FinishReason r);  // "none" | "end_token" | "length" | "cancelled" | "error"

struct DecodeJob {
  // ---- Inputs: set before the job's first step, never changed afterwards.
  // block_decode's prompt; with `infill` block_infill's canvas (mask ids anywhere).
  std::vector<int32_t> prompt;
  BlockDecoderOptions options;  // lengths, cache policy, commit rule, sampling, seed, mask / end ids
  bool infill = false;
  // After every step of this job: the canvas after the step (borrowed for the call),
  // the slots committed and the slots still masked. Optional. Runs on one of
  // batch_decode_step's worker threads: one job's calls come in step order and never
  // overlap, but the calls of different jobs may run at the same time.
  StepCallback on_step;

  // ---- Control: any thread. Honoured at the start of the next step (no forward is
  // spent on the job): done, FinishReason::kCancelled.
  std::atomic<bool> cancel{false};

  // ---- Outputs, written by batch_decode_step.
  bool done = false;
  FinishReason finish = FinishReason::kNone;
  std::string error;  // kError: one line naming the problem
  // When done: what block_decode / block_infill return (canvas cut after the end token,
  // forwards = steps this job took part in, generated, ended). Not kept up to date
  // during decoding: read the canvas in on_step for progress.
  BlockDecodeResult result;
  int steps = 0;  // steps this job has taken

  // ---- Internal state (batch_decode_step's): null until the first step.
  std::unique_ptr<decode::BatchJobState> state;

  DecodeJob();
  ~DecodeJob();
  DecodeJob(const DecodeJob&) = delete;
  DecodeJob& operator=(const DecodeJob&) = delete;
};

// What one batch_decode_step did (bench, server metrics).
struct BatchStepStats {
  int jobs = 0;           // jobs that took part in the forward
  int forwards = 0;       // forwards the step ran (one per group of split_into_groups)
  int query_rows = 0;     // rows fed to the forward (sum over jobs)
  int logit_rows = 0;     // rows the LM head ran on
  double weight_bytes = 0;  // weight bytes the forward read (ForwardOutput::weight_bytes)
  double flops = 0;
  double seconds = 0;     // wall time of the step
};

// Advances every job of `jobs` that is not done by one denoising step, with one forward
// for all of them. A job seen for the first time is validated against the model (ids,
// mask id, options, prompt + length within the model's context; block-causal models
// refuse infill): a bad one finishes with kError and takes no part, the others go on.
// Jobs finished by this step have done = true; the vector is not modified. Returns the
// number of jobs still not done. Throws Error only when the forward itself fails (then
// every job of the step is finished with kError as well).
int batch_decode_step(const Model& model, const std::vector<DecodeJob*>& jobs, BatchStepStats* stats = nullptr);

// How a step splits its jobs over `threads`: groups of job indices (each in job order)
// given each job's forward rows. One group holding every job when there are fewer than
// two jobs or threads, or when the longest-first split leaves a group more than 30% above
// an even share of the rows (one long canvas refresh among short steps); otherwise
// min(threads, jobs) groups.
std::vector<std::vector<size_t>> split_into_groups(const std::vector<int>& rows, int threads);

// Runs batch_decode_step until every job is done (no joins or leaves).
void batch_decode_all(const Model& model, const std::vector<DecodeJob*>& jobs);

}  // namespace unmask
