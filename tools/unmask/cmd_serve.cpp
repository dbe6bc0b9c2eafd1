// unmask serve: the OpenAI-compatible HTTP server and playground (unmask/server.h).
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "default_model.h"
#include "unmask/server.h"

namespace unmask::cli {

void register_serve(CLI::App& app) {
  auto o = std::make_shared<ServerOptions>();
  auto kv_mib = std::make_shared<size_t>(0);
  auto* cmd = app.add_subcommand("serve", "Serve a model over HTTP: OpenAI-compatible API, live denoising stream, playground");
  cmd->add_option("-m,--model", o->model_dir, "Model folder (default: the shipped unmask-coder-tiny)");
  cmd->add_option("--host", o->host, "Address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", o->port, "Port (default 8080; 0 = any free port, printed on start)");
  cmd->add_option("--parallel", o->parallel, "Requests decoded at once, sharing each step's forward (default 32)");
  cmd->add_option("--max-queue", o->max_queue, "Requests waiting for a slot before 429 (default 64)");
  cmd->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' on /v1/*");
  cmd->add_option("--name", o->model_name, "Model id clients send (default: the folder's name)");
  cmd->add_option("--kv-memory", *kv_mib, "K/V cache budget of the active requests in MiB (default 4096)");
  cmd->add_option("--timeout", o->request_timeout_s, "Per-request time limit in seconds (default 600)");
  cmd->add_option("--shutdown-grace", o->shutdown_grace_s,
                  "On SIGTERM: seconds in-flight requests may finish before they are cancelled (default 30)");
  cmd->add_option("--max-tokens", o->default_max_tokens, "Token limit of requests that name none (default 128)");
  cmd->add_option("--step-delay-ms", o->step_delay_ms,
                  "Minimum time per decoding step, to watch tiny models denoise in the playground (default 0)");
  cmd->add_option("--threads", o->threads, "Compute threads of the forward (default: all cores)");
  cmd->add_option("--http-threads", o->http_threads, "HTTP worker threads (default parallel + max-queue + 16)");
  cmd->callback([o, kv_mib] {
    o->kv_budget_bytes = *kv_mib << 20;
    if (o->model_dir.empty()) o->model_dir = default_model_dir();
    // SIGTERM / SIGINT are taken synchronously below: block them before any thread starts
    // so that every thread inherits the mask and none is interrupted.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::fprintf(stderr, "unmask serve: loading %s\n", o->model_dir.c_str());
    Server server(*o);
    const int port = server.start();
    std::fprintf(stderr, "unmask serve: listening on http://%s:%d (parallel %d, queue %d%s)\n", o->host.c_str(), port,
                 o->parallel, o->max_queue, o->api_key.empty() ? "" : ", API key required");
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "unmask serve: %s received\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server.shutdown();
  });
}

}  // namespace unmask::cli
