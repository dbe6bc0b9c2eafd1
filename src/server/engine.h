// engine.h — the server's scheduler: continuous batching of decoding requests.
//
// One engine thread runs batch_decode_step (unmask/batch_decode.h) over every active
// request: one forward per step for all of them. Requests wait in a bounded queue and
// are admitted at step boundaries while fewer than `parallel` are active and their K/V
// cache memory fits the budget; they leave at the step that finishes them. A request
// whose client went away, whose time limit passed or that hit a stop string is cancelled
// at its next step. The HTTP threads read a request's progress through its mailbox
// (Request::wait), never the decoder state.
//
// Ownership: the Engine borrows the model and tokenizer (they outlive it) and shares
// each Request with the HTTP thread that submitted it (shared_ptr).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/committed_text.h"
#include "unmask/batch_decode.h"
#include "unmask/model.h"
#include "unmask/tokenizer.h"

namespace unmask::server {

// What a request asks the engine for (validated by the API layer).
struct JobSpec {
  std::vector<int32_t> prompt;  // block_decode's prompt, or with `infill` the canvas with holes
  bool infill = false;
  int answer_begin = 0;         // first answer slot of the canvas (decode: the prompt length)
  int answer_length = 0;        // answer slots (decode: max tokens; infill: the hole)
  BlockDecoderOptions options;
  std::vector<std::string> stop;
  bool want_canvas = false;     // publish every step's answer slots (native stream)
};

// One step of progress, as the HTTP side sees it.
struct JobUpdate {
  int step = 0;
  std::string text_delta;          // text that became final this step
  std::vector<int32_t> answer;     // want_canvas: the answer slots after the step (mask id = masked)
  std::vector<int32_t> committed;  // want_canvas: answer-relative slots committed this step
};

enum class JobStatus { kOk, kCancelled, kTimeout, kShutdown, kError };

struct JobResult {
  JobStatus status = JobStatus::kOk;
  std::string error;            // kError / kTimeout / kShutdown: one line
  std::string text;             // the whole answer (stop strings excluded)
  std::string finish_reason;    // "stop" | "length"
  int prompt_tokens = 0, completion_tokens = 0;
  int steps = 0;                // forwards this request took part in
  double queue_seconds = 0, decode_seconds = 0;
};

// One accepted request: shared by the engine (writer) and its HTTP thread (reader).
class Request {
 public:
  // `client_gone`, when given, is asked on the engine thread before each of the request's
  // steps; true cancels it (for clients whose disconnect no write reveals: non-streamed).
  explicit Request(JobSpec spec, std::function<bool()> client_gone = {})
      : spec(std::move(spec)), client_gone_(std::move(client_gone)) {}
  // Waits up to `timeout` for progress, appends the updates to *out. Returns true once
  // the request is finished and every update has been handed out; then result() holds.
  bool wait(std::vector<JobUpdate>* out, std::chrono::milliseconds timeout);
  const JobResult& result() const { return result_; }
  // The client went away: cancel at the next step.
  void abandon() { abandoned_ = true; }

 private:
  friend class Engine;
  void publish(JobUpdate update);
  void finish(JobResult result);

  const JobSpec spec;
  const std::function<bool()> client_gone_;
  std::atomic<bool> abandoned_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<JobUpdate> updates_;
  bool finished_ = false;
  JobResult result_;

  // Engine thread only.
  DecodeJob job_;
  std::optional<CommittedText> text_;
  size_t kv_bytes_ = 0;
  std::chrono::steady_clock::time_point submitted_, admitted_, deadline_;
  std::string stream_text_;  // the text handed out so far
  JobStatus cancel_status_ = JobStatus::kOk;
};

struct EngineOptions {
  int parallel = 32;
  int max_queue = 64;
  size_t kv_budget_bytes = size_t(4) << 30;
  double request_timeout_s = 600;
  double step_delay_ms = 0;
  int threads = 0;  // OpenMP threads of the engine thread's forwards; 0 = the default
};

// Counters for /metrics (totals since start, and rates over the last seconds).
struct EngineStats {
  int64_t admitted = 0, completed = 0, cancelled = 0, timed_out = 0, failed = 0, rejected_full = 0;
  int64_t tokens = 0, forwards = 0, rows = 0;
  int queued = 0, active = 0;
  size_t kv_bytes = 0, kv_budget = 0;
  double tokens_per_s = 0, forwards_per_s = 0;  // over the last rate window
};

enum class SubmitStatus { kAccepted, kQueueFull, kTooLarge, kShuttingDown };

class Engine {
 public:
  Engine(const Model& model, const Tokenizer& tokenizer, const EngineOptions& options);
  ~Engine();  // cancels whatever is left and joins the engine thread

  // K/V bytes a request of `canvas_length` slots holds while active.
  size_t kv_bytes(int canvas_length) const;
  // Queues the request; *status says why not when it returns false.
  bool submit(const std::shared_ptr<Request>& request, SubmitStatus* status);
  // Stops admitting new requests; waits up to grace_s for the queue and the active
  // requests to finish, then cancels the rest. Returns {finished, cancelled}.
  std::pair<int, int> drain(double grace_s);
  EngineStats stats();

 private:
  void loop();
  void admit(std::vector<std::shared_ptr<Request>>* active);
  void on_step(Request& r, const StepEvent& e);
  void retire(Request& r);

  const Model& model_;
  const Tokenizer& tokenizer_;
  const EngineOptions options_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::shared_ptr<Request>> queue_;
  int active_count_ = 0;
  size_t kv_in_use_ = 0;
  bool accepting_ = true, stop_ = false, cancel_all_ = false;
  std::atomic<int> step_tokens_{0};  // slots committed in the current step (on_step: any decode thread)
  EngineStats stats_;
  std::deque<std::tuple<std::chrono::steady_clock::time_point, int, int>> recent_;  // (time, tokens, forwards)
  std::thread thread_;
};

}  // namespace unmask::server
