// The HTTP front end of unmask::Server: routes, authentication, SSE streaming, metrics.
#include "unmask/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include "server/api.h"
#include "server/client_socket.h"
#include "server/engine.h"
#include "server/web_assets.h"
#include "unmask/error.h"

namespace unmask {

using nlohmann::json;
using server::ApiError;
using server::Endpoint;
using server::JobResult;
using server::JobStatus;
using server::JobUpdate;

namespace {

// A streaming response polls its request this often; an idle stream then writes an SSE
// comment, so a client that went away is noticed (the write fails) while it waits.
constexpr std::chrono::milliseconds kStreamPoll{500};
// Idle keep-alive connections hold a worker thread; closing them soon lets shutdown
// finish quickly and frees threads for new connections.
constexpr time_t kKeepAliveSeconds = 2;
constexpr size_t kMaxBodyBytes = size_t(8) << 20;
constexpr int kListenBacklog = 1024;

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(server::error_body(e), "application/json");
}

std::string model_name(const ServerOptions& o) {
  if (!o.model_name.empty()) return o.model_name;
  std::filesystem::path p(o.model_dir);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// The error a finished-but-failed request reports (non-streamed status, streamed body).
ApiError result_error(const JobResult& r) {
  switch (r.status) {
    case JobStatus::kTimeout: return ApiError(504, r.error, "", "timeout", "server_error");
    case JobStatus::kShutdown: return ApiError(503, r.error, "", "shutting_down", "server_error");
    case JobStatus::kCancelled: return ApiError(499, "the request was cancelled", "", "cancelled", "server_error");
    case JobStatus::kError: return ApiError(400, r.error, "", "invalid_request");
    case JobStatus::kOk: break;
  }
  return ApiError(500, "internal error", "", "", "server_error");
}

const char* path_label(const std::string& path) {
  static const char* const kKnown[] = {"/v1/chat/completions", "/v1/completions", "/v1/diffusion/stream",
                                       "/v1/models", "/health", "/metrics", "/"};
  for (const char* p : kKnown)
    if (path == p) return p;
  return "other";
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  std::unique_ptr<Model> model;
  std::optional<Tokenizer> tokenizer;
  std::string name;
  std::unique_ptr<server::Engine> engine;
  httplib::Server http;
  std::thread http_thread;
  std::atomic<uint64_t> next_id{1};
  int listen_socket = -1;
  const int64_t started = int64_t(std::time(nullptr));

  std::mutex state_mu;
  std::condition_variable state_cv;
  enum class State { kIdle, kRunning, kDraining, kStopped } state = State::kIdle;

  // Streamed responses not yet completed by httplib (their releaser not yet called).
  // shutdown() waits for them after the engine drains: httplib's chunked writer stops
  // calling the content provider once stop() is called, so a stream whose request had
  // finished but whose final chunks ("finish_reason", [DONE]) were not yet written would
  // be cut short.
  std::mutex streams_mu;
  std::condition_variable streams_cv;
  int open_streams = 0;

  std::mutex metrics_mu;
  std::map<std::pair<std::string, int>, int64_t> responses;  // (path, status) -> count
  double seconds_per_request = 1;  // moving average, for Retry-After

  server::ServedModel served() const { return {*model, *tokenizer, name, options.default_max_tokens}; }
  void routes();
  void generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res);
  void stream(Endpoint endpoint, std::shared_ptr<server::Request> r, const server::ParsedRequest& p,
              server::ResponseHead head, httplib::Response& res);
  void finished(const std::string& path, const JobResult& r);
  std::string metrics();
};

Server::Server(const ServerOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.options = options;
  check(options.parallel >= 1, "--parallel must be at least 1, got " + std::to_string(options.parallel));
  check(options.max_queue >= 0, "--max-queue must not be negative, got " + std::to_string(options.max_queue));
  check(options.default_max_tokens >= 1, "the default token limit must be at least 1");
  s.model = load_model(options.model_dir);
  check(std::filesystem::exists(options.model_dir + "/tokenizer.json"),
        options.model_dir + ": no tokenizer.json; the server needs the model's tokenizer");
  s.tokenizer = Tokenizer::from_dir(options.model_dir);
  check(s.model->config.special.mask >= 0,
        options.model_dir + ": the model declares no mask token (config mask_token_id)");
  prefetch_weights(*s.model);  // once the folder is known to serve: no page faults in the first request
  s.name = model_name(options);
  server::EngineOptions eo;
  eo.parallel = options.parallel;
  eo.max_queue = options.max_queue;
  if (options.kv_budget_bytes > 0) eo.kv_budget_bytes = options.kv_budget_bytes;
  eo.request_timeout_s = options.request_timeout_s;
  eo.step_delay_ms = options.step_delay_ms;
  eo.threads = options.threads;
  s.engine = std::make_unique<server::Engine>(*s.model, *s.tokenizer, eo);
  const int threads = options.http_threads > 0 ? options.http_threads : options.parallel + options.max_queue + 16;
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  s.http.set_socket_options([&s](socket_t sock) {
    int yes = 1;  // httplib's default option, which this callback replaces
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    s.listen_socket = sock;
  });
  s.http.set_keep_alive_timeout(kKeepAliveSeconds);
  s.http.set_payload_max_length(kMaxBodyBytes);
  s.routes();
}

Server::~Server() { shutdown(); }

void Server::Impl::routes() {
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (auth.empty()) {
      send_error(res, ApiError(401, "no API key given: send the header 'Authorization: Bearer KEY'", "",
                               "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (auth != "Bearer " + options.api_key) {
      send_error(res, ApiError(401, "incorrect API key", "", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string what = res.status == 404 ? "no such endpoint: " + req.method + " " + req.path
                                               : std::string("HTTP error ") + std::to_string(res.status);
    send_error(res, ApiError(res.status, what, "", res.status == 404 ? "not_found" : ""));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, ApiError(500, "internal error: " + what, "", "", "server_error"));
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    std::lock_guard lock(metrics_mu);
    ++responses[{path_label(req.path), res.status}];
  });

  for (const server::WebAsset& a : server::web_assets()) {
    auto serve = [a](const httplib::Request&, httplib::Response& res) {
      res.set_content(a.body.data(), a.body.size(), std::string(a.content_type).c_str());
    };
    http.Get(std::string(a.path), serve);
    if (a.path == "/index.html") http.Get("/", serve);
  }
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(state_mu);
    const bool ok = state == State::kRunning;
    res.status = ok ? 200 : 503;
    res.set_content(json{{"status", ok ? "ok" : "shutting_down"}, {"model", name}}.dump(), "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics(), "text/plain; version=0.0.4");
  });
  auto model_json = [this] {
    return json{{"id", name}, {"object", "model"}, {"created", started}, {"owned_by", "unmask"}};
  };
  http.Get("/v1/models", [model_json](const httplib::Request&, httplib::Response& res) {
    res.set_content(json{{"object", "list"}, {"data", json::array({model_json()})}}.dump(), "application/json");
  });
  http.Get(R"(/v1/models/(.+))", [this, model_json](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != name)
      return send_error(res, ApiError(404, "the model '" + std::string(req.matches[1]) + "' does not exist", "model",
                                      "model_not_found"));
    res.set_content(model_json().dump(), "application/json");
  });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& req, httplib::Response& res) { generate(Endpoint::kChat, req, res); });
  http.Post("/v1/completions",
            [this](const httplib::Request& req, httplib::Response& res) { generate(Endpoint::kCompletion, req, res); });
  http.Post("/v1/diffusion/stream",
            [this](const httplib::Request& req, httplib::Response& res) { generate(Endpoint::kDiffusion, req, res); });
}

void Server::Impl::finished(const std::string& path, const JobResult& r) {
  {
    std::lock_guard lock(metrics_mu);
    // Exponential moving average over roughly the last ten requests.
    seconds_per_request = 0.9 * seconds_per_request + 0.1 * (r.queue_seconds + r.decode_seconds);
  }
  if (!options.log_requests) return;
  const char* outcome = r.status == JobStatus::kOk          ? r.finish_reason.c_str()
                        : r.status == JobStatus::kCancelled ? "cancelled (client gone)"
                                                            : "failed";
  std::fprintf(stderr, "unmask serve: %s %s: prompt %d, completion %d tokens, %d steps, queued %.2f s, decoded %.2f s%s%s\n",
               path.c_str(), outcome, r.prompt_tokens, r.completion_tokens, r.steps, r.queue_seconds, r.decode_seconds, r.error.empty() ? "" : ": ",
               r.error.c_str());
}

void Server::Impl::generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
  server::ParsedRequest p;
  try {
    p = server::parse_request(endpoint, req.body, served());
  } catch (const ApiError& e) {
    return send_error(res, e);
  }
  // A streamed response notices a departed client when a write fails; a non-streamed one
  // writes nothing until the end, so the engine watches its socket instead.
  std::function<bool()> client_gone;
  if (!p.stream) {
    const int socket = server::find_connection_socket({req.local_addr, req.remote_addr, req.local_port, req.remote_port});
    if (socket >= 0) client_gone = [socket] { return server::peer_closed(socket); };
  }
  auto r = std::make_shared<server::Request>(p.spec, std::move(client_gone));
  server::SubmitStatus status;
  if (!engine->submit(r, &status)) {
    if (status == server::SubmitStatus::kQueueFull) {
      double wait = 1;
      {
        std::lock_guard lock(metrics_mu);
        wait = std::clamp(std::ceil(seconds_per_request), 1.0, 60.0);
      }
      res.set_header("Retry-After", std::to_string(int(wait)));
      return send_error(res, ApiError(429, "the server's queue is full; retry later", "", "queue_full",
                                      "rate_limit_exceeded"));
    }
    if (status == server::SubmitStatus::kTooLarge)
      return send_error(res, ApiError(400, "this request's K/V cache would exceed the server's memory budget", "max_tokens",
                                      "context_length_exceeded"));
    return send_error(res, ApiError(503, "the server is shutting down", "", "shutting_down", "server_error"));
  }
  server::ResponseHead head;
  head.id = std::string(endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id++);
  head.model = name;
  head.created = int64_t(std::time(nullptr));
  if (p.stream) return stream(endpoint, r, p, head, res);
  std::vector<JobUpdate> ignored;
  while (!r->wait(&ignored, kStreamPoll)) ignored.clear();
  const JobResult& result = r->result();
  finished(req.path, result);
  if (result.status != JobStatus::kOk) return send_error(res, result_error(result));
  res.set_content(server::completion_body(endpoint, head, result).dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
}

void Server::Impl::stream(Endpoint endpoint, std::shared_ptr<server::Request> r, const server::ParsedRequest& p,
                          server::ResponseHead head, httplib::Response& res) {
  struct StreamState {
    bool first = true;
  };
  auto st = std::make_shared<StreamState>();
  const bool usage = p.include_usage;
  const int32_t mask = model->config.special.mask;
  const std::string path = endpoint == Endpoint::kChat         ? "/v1/chat/completions"
                           : endpoint == Endpoint::kCompletion ? "/v1/completions"
                                                               : "/v1/diffusion/stream";
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  {
    std::lock_guard lock(streams_mu);
    ++open_streams;
  }
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, r, st, head, endpoint, usage, mask, path](size_t, httplib::DataSink& sink) {
        std::vector<JobUpdate> updates;
        const bool done = r->wait(&updates, kStreamPoll);
        std::string out;
        for (const JobUpdate& u : updates) {
          if (endpoint == Endpoint::kDiffusion) {
            out += server::sse(server::step_event(u, *tokenizer, mask));
          } else if (!u.text_delta.empty()) {
            out += server::sse(server::stream_chunk(endpoint, head, u.text_delta, nullptr, st->first));
            st->first = false;
          }
        }
        if (done) {
          const JobResult& result = r->result();
          finished(path, result);
          if (result.status != JobStatus::kOk) {
            out += "data: " + server::error_body(result_error(result)) + "\n\n";
          } else if (endpoint == Endpoint::kDiffusion) {
            out += server::sse({{"done", true},
                                {"finish_reason", result.finish_reason},
                                {"text", result.text},
                                {"usage", server::usage_json(result)},
                                {"steps", result.steps},
                                {"decode_seconds", result.decode_seconds}});
          } else {
            if (st->first && endpoint == Endpoint::kChat)
              out += server::sse(server::stream_chunk(endpoint, head, "", nullptr, true));
            out += server::sse(server::stream_chunk(endpoint, head, "", result.finish_reason.c_str(), false));
            if (usage) out += server::sse(server::usage_chunk(endpoint, head, result));
          }
          out += "data: [DONE]\n\n";
        }
        if (out.empty()) out = ": waiting\n\n";  // SSE comment: clients ignore it
        if (!sink.write(out.data(), out.size())) {
          r->abandon();
          return false;
        }
        if (done) sink.done();
        return true;
      },
      [this, r](bool success) {
        if (!success) r->abandon();
        {
          std::lock_guard lock(streams_mu);
          --open_streams;
        }
        streams_cv.notify_all();
      });
}

std::string Server::Impl::metrics() {
  const server::EngineStats s = engine->stats();
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, double value) {
    char line[96];
    std::snprintf(line, sizeof line, "%.6g", value);
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + line + "\n";
  };
  out += "# HELP unmask_http_responses_total HTTP responses by path and status.\n"
         "# TYPE unmask_http_responses_total counter\n";
  {
    std::lock_guard lock(metrics_mu);
    for (const auto& [key, n] : responses)
      out += "unmask_http_responses_total{path=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
             std::to_string(n) + "\n";
  }
  metric("unmask_requests_admitted_total", "counter", "Requests admitted to decoding.", double(s.admitted));
  metric("unmask_requests_completed_total", "counter", "Requests decoded to the end.", double(s.completed));
  metric("unmask_requests_cancelled_total", "counter", "Requests cancelled (client gone, shutdown).", double(s.cancelled));
  metric("unmask_requests_timed_out_total", "counter", "Requests stopped by the time limit.", double(s.timed_out));
  metric("unmask_requests_failed_total", "counter", "Requests that failed while decoding.", double(s.failed));
  metric("unmask_requests_rejected_total", "counter", "Requests refused with 429 (queue full).", double(s.rejected_full));
  metric("unmask_queue_depth", "gauge", "Requests waiting for admission.", s.queued);
  metric("unmask_active_requests", "gauge", "Requests being decoded.", s.active);
  metric("unmask_kv_cache_bytes", "gauge", "K/V cache bytes reserved by active requests.", double(s.kv_bytes));
  metric("unmask_kv_cache_budget_bytes", "gauge", "K/V cache admission budget.", double(s.kv_budget));
  metric("unmask_tokens_total", "counter", "Canvas slots committed.", double(s.tokens));
  metric("unmask_forwards_total", "counter", "Batched model forwards (steps).", double(s.forwards));
  metric("unmask_query_rows_total", "counter", "Query rows fed to the forwards.", double(s.rows));
  metric("unmask_tokens_per_second", "gauge", "Slots committed per second over the last 10 s.", s.tokens_per_s);
  metric("unmask_forwards_per_second", "gauge", "Forwards per second over the last 10 s.", s.forwards_per_s);
  return out;
}

int Server::start() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.state_mu);
    check(s.state == Impl::State::kIdle, "Server::start called twice");
  }
  // A client that disconnects mid-response must fail the write, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  const int port = s.options.port == 0 ? s.http.bind_to_any_port(s.options.host)
                                       : (s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1);
  check(port > 0, "cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                      " (address in use or not available)");
  // httplib 0.11 listens with a backlog of 5: a burst of clients connecting while the
  // accept thread waits for a core overflows it and their connections are reset. Calling
  // listen() again on the listening socket raises the backlog (Linux).
  if (s.listen_socket >= 0) ::listen(s.listen_socket, kListenBacklog);
  {
    std::lock_guard lock(s.state_mu);
    s.state = Impl::State::kRunning;
  }
  s.http_thread = std::thread([&s] { s.http.listen_after_bind(); });
  return port;
}

void Server::wait() {
  Impl& s = *impl_;
  std::unique_lock lock(s.state_mu);
  s.state_cv.wait(lock, [&] { return s.state == Impl::State::kStopped || s.state == Impl::State::kIdle; });
}

void Server::shutdown() {
  Impl& s = *impl_;
  {
    std::unique_lock lock(s.state_mu);
    if (s.state == Impl::State::kIdle) return;
    if (s.state != Impl::State::kRunning) {
      s.state_cv.wait(lock, [&] { return s.state == Impl::State::kStopped; });
      return;
    }
    s.state = Impl::State::kDraining;
  }
  const server::EngineStats before = s.engine->stats();
  std::fprintf(stderr, "unmask serve: shutting down: %d requests in flight (%d queued), up to %.0f s to finish\n",
               before.active + before.queued, before.queued, s.options.shutdown_grace_s);
  const auto [finished, cancelled] = s.engine->drain(s.options.shutdown_grace_s);
  std::fprintf(stderr, "unmask serve: %d in-flight requests finished, %d cancelled; stopping\n", finished, cancelled);
  {
    // Every request is final now; its stream writes the last chunks at the provider's
    // next call (within kStreamPoll). The bound covers a client that stops reading.
    std::unique_lock lock(s.streams_mu);
    s.streams_cv.wait_for(lock, 4 * kStreamPoll, [&] { return s.open_streams == 0; });
  }
  s.http.stop();  // joins the HTTP workers
  if (s.http_thread.joinable()) s.http_thread.join();
  {
    std::lock_guard lock(s.state_mu);
    s.state = Impl::State::kStopped;
  }
  s.state_cv.notify_all();
}

}  // namespace unmask
