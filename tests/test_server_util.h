// tests/test_server_util.h — a live unmask::Server on 127.0.0.1 (any free port) over a
// fixture model, and small HTTP helpers (plain JSON calls, SSE streams read event by
// event) for the server tests. Header-only.
#pragma once
#include <httplib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"
#include "unmask/server.h"

namespace unmask::test {

inline ServerOptions server_options() {
  ServerOptions o;
  o.model_dir = llada_dir();
  o.port = 0;
  o.log_requests = false;
  o.shutdown_grace_s = 10;
  // The tiny model gains nothing from more threads, and on a loaded machine every OpenMP
  // barrier of an oversubscribed team costs a time slice.
  o.threads = 1;
  return o;
}

struct LiveServer {
  explicit LiveServer(const ServerOptions& o = server_options()) : server(o), port(server.start()) {}
  Server server;
  int port;
};

struct HttpResult {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

inline HttpResult http_call(int port, const std::string& method, const std::string& path, const std::string& body = "",
                            const httplib::Headers& headers = {}) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(120, 0);
  httplib::Result r = method == "GET" ? cli.Get(path, headers) : cli.Post(path, headers, body, "application/json");
  if (!r) return {};
  return {r->status, r->body, r->headers};
}

inline HttpResult post_json(int port, const std::string& path, const nlohmann::json& body, const httplib::Headers& h = {}) {
  return http_call(port, "POST", path, body.dump(), h);
}

// A streamed response: its status and SSE `data:` payloads in order, with the time each
// arrived. `on_event` may return false to disconnect.
struct SseResult {
  int status = 0;
  std::vector<std::string> events;
  std::vector<std::chrono::steady_clock::time_point> times;
  bool completed = false;  // the response ended normally (not disconnected)
  std::string error;       // the client's error when not completed
};

inline SseResult post_stream(int port, const std::string& path, const nlohmann::json& body,
                             const std::function<bool(const std::string&)>& on_event = {}) {
  SseResult out;
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(120, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string buffer;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    for (size_t cut; (cut = buffer.find("\n\n")) != std::string::npos;) {
      const std::string event = buffer.substr(0, cut);
      buffer.erase(0, cut + 2);
      if (event.rfind("data: ", 0) != 0) continue;  // SSE comments (keep-alives)
      out.events.push_back(event.substr(6));
      out.times.push_back(std::chrono::steady_clock::now());
      if (on_event && !on_event(out.events.back())) return false;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  out.completed = cli.send(req, res, err);
  out.status = res.status;
  out.error = httplib::to_string(err);
  return out;
}

}  // namespace unmask::test
