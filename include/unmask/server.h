// unmask/server.h — the HTTP service: OpenAI-compatible endpoints, a native endpoint that
// streams every denoising step, Prometheus metrics and the playground page.
//
// A Server owns the loaded model, its tokenizer, the decoding engine (one scheduler
// thread that batches the steps of every active request) and the HTTP listener with its
// worker pool. Nothing is borrowed from the caller after construction.
#pragma once
#include <memory>
#include <string>

namespace unmask {

struct ServerOptions {
  std::string model_dir;
  std::string model_name;  // the id clients send as "model"; empty = the folder's name
  std::string host = "127.0.0.1";
  int port = 8080;         // 0 = any free port (start() returns it)
  int parallel = 32;       // requests decoded at once (sharing each step's forward)
  int max_queue = 64;      // requests waiting for admission; beyond that: 429
  std::string api_key;     // empty = no authentication
  // Admission bound on the K/V cache memory of the active requests (every layer's K and
  // V rows for prompt + max tokens, f32). 0 = 4 GiB.
  size_t kv_budget_bytes = 0;
  double request_timeout_s = 600;  // per request, from admission to its last step
  double shutdown_grace_s = 30;    // shutdown(): how long in-flight requests may finish
  // Minimum wall time of one engine step (0 = as fast as possible). For demos on tiny
  // models, whose steps are too quick to watch, and for tests that need a request to
  // stay in flight.
  double step_delay_ms = 0;
  int threads = 0;         // compute threads of the forward (OpenMP); 0 = all cores
  int http_threads = 0;    // HTTP worker pool; 0 = parallel + max_queue + 16 (one per stream)
  int default_max_tokens = 128;  // when a request names no token limit
  bool log_requests = true;      // one line per finished request on stderr
};

class Server {
 public:
  // Loads the model and tokenizer from options.model_dir; throws Error on a bad folder.
  explicit Server(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listener and starts the engine and HTTP threads; returns the bound port.
  // Throws Error when the address cannot be bound.
  int start();
  // Blocks until shutdown() has completed.
  void wait();
  // Graceful: refuses new requests (503), lets in-flight ones finish for up to
  // shutdown_grace_s, cancels the rest (their clients get an error), then stops the
  // listener. Prints what it did on stderr. Safe to call from any thread, repeatedly.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace unmask
