#include "server/engine.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <span>
#include <tuple>

namespace unmask::server {

using Clock = std::chrono::steady_clock;

namespace {
// /metrics rates are averaged over this window.
constexpr double kRateWindowSeconds = 10.0;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

bool Request::wait(std::vector<JobUpdate>* out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !updates_.empty() || finished_; });
  for (JobUpdate& u : updates_) out->push_back(std::move(u));
  updates_.clear();
  return finished_;
}

void Request::publish(JobUpdate update) {
  {
    std::lock_guard lock(mu_);
    updates_.push_back(std::move(update));
  }
  cv_.notify_all();
}

void Request::finish(JobResult result) {
  {
    std::lock_guard lock(mu_);
    result_ = std::move(result);
    finished_ = true;
  }
  cv_.notify_all();
}

Engine::Engine(const Model& model, const Tokenizer& tokenizer, const EngineOptions& options)
    : model_(model), tokenizer_(tokenizer), options_(options) {
  stats_.kv_budget = options_.kv_budget_bytes;
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  drain(0);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

size_t Engine::kv_bytes(int canvas_length) const {
  const ModelConfig& c = model_.config;
  // K and V, f32, every layer: [n_layers, canvas_length, n_kv_heads * head_dim] each.
  return size_t(2) * sizeof(float) * size_t(c.n_layers) * size_t(canvas_length) * size_t(c.n_kv_heads) *
         size_t(c.head_dim);
}

bool Engine::submit(const std::shared_ptr<Request>& request, SubmitStatus* status) {
  const int canvas = request->spec.infill ? int(request->spec.prompt.size())
                                          : int(request->spec.prompt.size()) + request->spec.answer_length;
  request->kv_bytes_ = kv_bytes(canvas);
  std::lock_guard lock(mu_);
  if (!accepting_) {
    *status = SubmitStatus::kShuttingDown;
    return false;
  }
  if (request->kv_bytes_ > options_.kv_budget_bytes) {
    *status = SubmitStatus::kTooLarge;
    return false;
  }
  if (int(queue_.size()) >= options_.max_queue) {
    ++stats_.rejected_full;
    *status = SubmitStatus::kQueueFull;
    return false;
  }
  request->submitted_ = Clock::now();
  queue_.push_back(request);
  *status = SubmitStatus::kAccepted;
  cv_.notify_all();
  return true;
}

// Under mu_. FIFO: a request whose K/V does not fit waits, and so do those behind it.
void Engine::admit(std::vector<std::shared_ptr<Request>>* active) {
  while (!queue_.empty() && int(active->size()) < options_.parallel) {
    const std::shared_ptr<Request>& r = queue_.front();
    if (!active->empty() && kv_in_use_ + r->kv_bytes_ > options_.kv_budget_bytes) break;
    const JobSpec& spec = r->spec;
    r->job_.prompt = spec.prompt;
    r->job_.options = spec.options;
    r->job_.infill = spec.infill;
    Request* raw = r.get();
    r->job_.on_step = [this, raw](const StepEvent& e) { on_step(*raw, e); };
    r->text_.emplace(tokenizer_, spec.options.mask_id, spec.options.end_ids, spec.stop);
    r->admitted_ = Clock::now();
    r->deadline_ = r->admitted_ + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(options_.request_timeout_s));
    kv_in_use_ += r->kv_bytes_;
    ++active_count_;
    ++stats_.admitted;
    active->push_back(r);
    queue_.pop_front();
  }
}

// A decode thread inside batch_decode_step (one request's calls in order; different requests
// concurrently): touches only r and the atomic step_tokens_.
void Engine::on_step(Request& r, const StepEvent& e) {
  const std::vector<int32_t>& canvas = *e.canvas;
  const size_t begin = std::min(canvas.size(), size_t(r.spec.answer_begin));
  const size_t end = std::min(canvas.size(), begin + size_t(r.spec.answer_length));
  const std::span<const int32_t> answer(canvas.data() + begin, end - begin);
  JobUpdate u;
  u.step = r.job_.steps + 1;
  u.text_delta = r.text_->update(answer);
  r.stream_text_ += u.text_delta;
  step_tokens_ += int(e.committed.size());
  if (r.text_->stopped()) r.job_.cancel = true;  // nothing after a stop string matters
  if (r.spec.want_canvas) {
    u.answer.assign(answer.begin(), answer.end());
    for (int32_t s : e.committed)
      if (s >= int32_t(begin) && s < int32_t(end)) u.committed.push_back(s - int32_t(begin));
  }
  if (r.spec.want_canvas || !u.text_delta.empty()) r.publish(std::move(u));
}

// Engine thread: the request left the batch; hand its result to the HTTP side.
void Engine::retire(Request& r) {
  JobResult res;
  const std::string tail = r.text_->finish();
  if (!tail.empty()) {
    JobUpdate u;
    u.step = r.job_.steps;
    u.text_delta = tail;
    r.publish(std::move(u));
  }
  res.text = r.text_->text();
  res.completion_tokens = r.text_->tokens();
  res.prompt_tokens = int(r.spec.prompt.size()) - (r.spec.infill ? r.spec.answer_length : 0);
  res.steps = r.job_.steps;
  res.queue_seconds = seconds_between(r.submitted_, r.admitted_);
  res.decode_seconds = seconds_between(r.admitted_, Clock::now());
  const bool stopped = r.text_->stopped() || r.text_->ended() || r.job_.finish == FinishReason::kEndToken;
  res.finish_reason = stopped ? "stop" : "length";
  if (r.text_->stopped()) {
    res.status = JobStatus::kOk;
  } else if (r.job_.finish == FinishReason::kCancelled) {
    res.status = r.cancel_status_;
    if (res.status == JobStatus::kTimeout)
      res.error = "the request exceeded the server's time limit of " + std::to_string(int(options_.request_timeout_s)) +
                  " s after " + std::to_string(res.steps) + " steps";
    else if (res.status == JobStatus::kShutdown)
      res.error = "the server is shutting down; the request was cancelled after " + std::to_string(res.steps) + " steps";
  } else if (r.job_.finish == FinishReason::kError) {
    res.status = JobStatus::kError;
    res.error = r.job_.error;
  }
  std::lock_guard lock(mu_);
  kv_in_use_ -= r.kv_bytes_;
  --active_count_;
  switch (res.status) {
    case JobStatus::kOk: ++stats_.completed; break;
    case JobStatus::kCancelled:
    case JobStatus::kShutdown: ++stats_.cancelled; break;
    case JobStatus::kTimeout: ++stats_.timed_out; break;
    case JobStatus::kError: ++stats_.failed; break;
  }
  r.finish(std::move(res));
  idle_cv_.notify_all();
}

void Engine::loop() {
  if (options_.threads > 0) omp_set_num_threads(options_.threads);  // this thread's forwards
  std::vector<std::shared_ptr<Request>> active;
  for (;;) {
    bool cancel_all = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !active.empty() || !queue_.empty(); });
      if (stop_ && active.empty() && queue_.empty()) return;
      admit(&active);
      cancel_all = cancel_all_;
    }
    const Clock::time_point start = Clock::now();
    std::vector<DecodeJob*> jobs;
    for (const std::shared_ptr<Request>& r : active) {
      if (r->cancel_status_ == JobStatus::kOk) {
        if (cancel_all) r->cancel_status_ = JobStatus::kShutdown;
        else if (r->abandoned_ || (r->client_gone_ && r->client_gone_())) r->cancel_status_ = JobStatus::kCancelled;
        else if (start > r->deadline_) r->cancel_status_ = JobStatus::kTimeout;
        if (r->cancel_status_ != JobStatus::kOk) r->job_.cancel = true;
      }
      jobs.push_back(&r->job_);
    }
    step_tokens_ = 0;
    BatchStepStats step;
    try {
      batch_decode_step(model_, jobs, &step);
    } catch (const std::exception& e) {
      // The forward failed: batch_decode_step finished every job of the step with kError.
      std::fprintf(stderr, "unmask serve: step failed: %s\n", e.what());
      for (DecodeJob* j : jobs)
        if (!j->done) {
          j->done = true;
          j->finish = FinishReason::kError;
          j->error = e.what();
        }
    }
    {
      std::lock_guard lock(mu_);
      stats_.tokens += step_tokens_;
      if (step.jobs > 0) {
        ++stats_.forwards;
        stats_.rows += step.query_rows;
        recent_.emplace_back(start, step_tokens_, 1);
      }
    }
    std::erase_if(active, [&](const std::shared_ptr<Request>& r) {
      if (!r->job_.done && !r->text_->stopped()) return false;
      retire(*r);
      return true;
    });
    if (options_.step_delay_ms > 0 && !active.empty())
      std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double, std::milli>(options_.step_delay_ms)));
  }
}

std::pair<int, int> Engine::drain(double grace_s) {
  std::unique_lock lock(mu_);
  accepting_ = false;
  const int64_t cancelled_before = stats_.cancelled;
  const int in_flight = int(queue_.size()) + active_count_;
  idle_cv_.wait_for(lock, std::chrono::duration<double>(grace_s), [&] { return queue_.empty() && active_count_ == 0; });
  if (!queue_.empty() || active_count_ > 0) {
    cancel_all_ = true;
    for (const std::shared_ptr<Request>& r : queue_) {
      JobResult res;
      res.status = JobStatus::kShutdown;
      res.error = "the server is shutting down; the request was cancelled before it started";
      ++stats_.cancelled;
      r->finish(std::move(res));
    }
    queue_.clear();
    cv_.notify_all();
    idle_cv_.wait(lock, [&] { return active_count_ == 0; });  // each active request ends at its next step
  }
  const int cancelled = int(stats_.cancelled - cancelled_before);
  return {in_flight - cancelled, cancelled};
}

EngineStats Engine::stats() {
  std::lock_guard lock(mu_);
  const Clock::time_point now = Clock::now();
  while (!recent_.empty() && seconds_between(std::get<0>(recent_.front()), now) > kRateWindowSeconds)
    recent_.pop_front();
  EngineStats s = stats_;
  s.queued = int(queue_.size());
  s.active = active_count_;
  s.kv_bytes = kv_in_use_;
  int64_t tokens = 0, forwards = 0;
  for (const auto& [t, n, f] : recent_) {
    tokens += n;
    forwards += f;
  }
  s.tokens_per_s = double(tokens) / kRateWindowSeconds;
  s.forwards_per_s = double(forwards) / kRateWindowSeconds;
  return s;
}

}  // namespace unmask::server
