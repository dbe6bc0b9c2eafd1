// `unmask serve` error answers: every bad request gets an OpenAI-style
// {"error": {"message", "type", "param", "code"}} with the right status, and the server
// keeps serving afterwards.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "test_server_util.h"

namespace unmask::test {
namespace {

using nlohmann::json;

json chat(int max_tokens = 8) {
  return {{"model", "llada-tiny"},
          {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
          {"max_tokens", max_tokens}};
}

// Checks the error shape; returns the error object.
json expect_error(const HttpResult& r, int status, const std::string& param, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  const json j = r.json();
  EXPECT_TRUE(j.is_object() && j.contains("error")) << r.body;
  if (!j.is_object() || !j.contains("error")) return {};
  const json& e = j["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r.body;
  EXPECT_TRUE(e["type"].is_string()) << r.body;
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << r.body;
  if (param.empty()) EXPECT_TRUE(e["param"].is_null()) << r.body;
  else EXPECT_EQ(e["param"], param) << r.body;
  EXPECT_EQ(e["code"], code) << r.body;
  return e;
}

TEST(ServerErrors, MalformedBodiesAndWrongTypesAre400) {
  LiveServer s;
  const std::string path = "/v1/chat/completions";
  expect_error(http_call(s.port, "POST", path, "{\"messages\": [", {}), 400, "", "invalid_json");
  expect_error(http_call(s.port, "POST", path, "[1, 2]", {}), 400, "", "invalid_json");
  expect_error(http_call(s.port, "POST", path, "", {}), 400, "", "invalid_json");
  json j = chat();
  j["temperature"] = "hot";
  expect_error(post_json(s.port, path, j), 400, "temperature", "invalid_type");
  j = chat();
  j["messages"] = "hi";
  expect_error(post_json(s.port, path, j), 400, "messages", "invalid_type");
  j = chat();
  j["messages"][0]["role"] = 3;
  expect_error(post_json(s.port, path, j), 400, "messages[0].role", "invalid_type");
  j = chat();
  j["messages"][0]["role"] = "wizard";
  expect_error(post_json(s.port, path, j), 400, "messages[0].role", "invalid_value");
  j = chat();
  j["stream"] = "yes";
  expect_error(post_json(s.port, path, j), 400, "stream", "invalid_type");
  j = chat();
  j["stop"] = json::array({1});
  expect_error(post_json(s.port, path, j), 400, "stop", "invalid_type");
  j = chat();
  j["cache"] = "l2";
  expect_error(post_json(s.port, path, j), 400, "cache", "invalid_value");
  j = chat();
  j["algorithm"] = "greedy";
  expect_error(post_json(s.port, path, j), 400, "algorithm", "invalid_value");
  j = chat();
  j["threshold"] = 1.5;
  expect_error(post_json(s.port, path, j), 400, "threshold", "invalid_value");
  j = chat();
  j["top_p"] = 0;
  expect_error(post_json(s.port, path, j), 400, "top_p", "invalid_value");
  j = chat();
  j["n"] = 2;
  expect_error(post_json(s.port, path, j), 400, "n", "invalid_value");
  expect_error(post_json(s.port, "/v1/completions", {{"prompt", json::array({99999})}}), 400, "prompt", "invalid_value");
  expect_error(post_json(s.port, "/v1/completions", {{"prompt", 5}}), 400, "prompt", "invalid_type");
  EXPECT_EQ(post_json(s.port, path, chat()).status, 200);  // still serving
}

TEST(ServerErrors, EmptyMessagesAndTokenLimitsAre400) {
  LiveServer s;
  const std::string path = "/v1/chat/completions";
  json j = chat();
  j["messages"] = json::array();
  expect_error(post_json(s.port, path, j), 400, "messages", "empty_array");
  j.erase("messages");
  expect_error(post_json(s.port, path, j), 400, "messages", "missing_required_parameter");
  expect_error(post_json(s.port, path, chat(0)), 400, "max_tokens", "invalid_value");
  expect_error(post_json(s.port, path, chat(-3)), 400, "max_tokens", "invalid_value");
  j = chat();
  j.erase("max_tokens");
  j["max_completion_tokens"] = 1 << 20;  // beyond the fixture's 4096-token context
  expect_error(post_json(s.port, path, j), 400, "max_completion_tokens", "invalid_value");
  j["max_completion_tokens"] = 4090;  // fits alone, not with the prompt
  expect_error(post_json(s.port, path, j), 400, "max_completion_tokens", "context_length_exceeded");
  // A prompt longer than the context.
  const json long_prompt = {{"prompt", json(std::vector<int>(4100, 65))}, {"max_tokens", 4}};
  expect_error(post_json(s.port, "/v1/completions", long_prompt), 400, "prompt", "context_length_exceeded");
  expect_error(post_json(s.port, "/v1/completions", {{"prompt", ""}}), 400, "prompt", "invalid_value");
}

TEST(ServerErrors, UnknownModelAndEndpointAre404) {
  LiveServer s;
  json j = chat();
  j["model"] = "gpt-4o";
  expect_error(post_json(s.port, "/v1/chat/completions", j), 404, "model", "model_not_found");
  expect_error(http_call(s.port, "GET", "/v1/models/gpt-4o"), 404, "model", "model_not_found");
  expect_error(http_call(s.port, "GET", "/v1/nothing-here"), 404, "", "not_found");
}

TEST(ServerErrors, ApiKeyIsRequiredOnV1) {
  ServerOptions o = server_options();
  o.api_key = "sekrit";
  LiveServer s(o);
  expect_error(post_json(s.port, "/v1/chat/completions", chat()), 401, "", "invalid_api_key");
  expect_error(post_json(s.port, "/v1/chat/completions", chat(), {{"Authorization", "Bearer wrong"}}), 401, "",
               "invalid_api_key");
  expect_error(http_call(s.port, "GET", "/v1/models"), 401, "", "invalid_api_key");
  EXPECT_EQ(post_json(s.port, "/v1/chat/completions", chat(), {{"Authorization", "Bearer sekrit"}}).status, 200);
  EXPECT_EQ(http_call(s.port, "GET", "/health").status, 200);  // health and the page stay open
  EXPECT_EQ(http_call(s.port, "GET", "/").status, 200);
}

// One request decoding, one waiting: the next is refused with 429 and Retry-After, and
// the accepted two still complete.
TEST(ServerErrors, FullQueueIs429WithRetryAfter) {
  ServerOptions o = server_options();
  o.parallel = 1;
  o.max_queue = 1;
  o.step_delay_ms = 40;  // keeps the first request in flight for ~2 s
  LiveServer s(o);
  json slow = chat(48);
  slow["algorithm"] = "topn";  // one slot per step: 48 steps
  slow["stream"] = true;
  std::atomic<bool> first_started{false};
  SseResult first;
  std::thread a([&] {
    first = post_stream(s.port, "/v1/chat/completions", slow, [&](const std::string&) {
      first_started = true;
      return true;
    });
  });
  while (!first_started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  HttpResult second;
  std::thread b([&] { second = post_json(s.port, "/v1/chat/completions", chat(4)); });
  // The second is queued once the metrics say so; then the queue is full.
  for (int i = 0; i < 500 && http_call(s.port, "GET", "/metrics").body.find("unmask_queue_depth 1") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const HttpResult third = post_json(s.port, "/v1/chat/completions", chat(4));
  expect_error(third, 429, "", "queue_full");
  bool has_retry = false;
  for (const auto& [k, v] : third.headers)
    if (k == "Retry-After") has_retry = std::stoi(v) >= 1;
  EXPECT_TRUE(has_retry);
  a.join();
  b.join();
  EXPECT_TRUE(first.completed);
  EXPECT_EQ(first.events.back(), "[DONE]");
  EXPECT_EQ(second.status, 200) << second.body;
}

}  // namespace
}  // namespace unmask::test
