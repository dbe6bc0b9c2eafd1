// `unmask serve` under load and over its lifetime: 32 concurrent streams decoded
// together (some clients disconnecting mid-stream), seeded output independent of the
// batch, the per-request time limit, and graceful shutdown.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "test_server_util.h"

namespace unmask::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

json stream_request(const std::string& user, int max_tokens, uint64_t seed) {
  return {{"messages", json::array({{{"role", "user"}, {"content", user}}})},
          {"max_tokens", max_tokens},
          {"algorithm", "topn"},  // one slot per step: many steps, text streamed bit by bit
          {"temperature", 0.7},
          {"seed", seed},
          {"stream", true}};
}

int64_t metric(int port, const std::string& name) {
  const std::string body = http_call(port, "GET", "/metrics").body;
  const size_t at = body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
}

TEST(ServerLoad, ThirtyTwoStreamsProgressTogetherAndDisconnectsCancel) {
  ServerOptions o = server_options();
  o.parallel = 32;
  o.step_delay_ms = 20;  // >= 64 steps: every request is in flight for >= 1.3 s
  LiveServer s(o);
  constexpr int kClients = 32;
  std::vector<SseResult> results(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i)
    threads.emplace_back([&, i] {
      int seen = 0;
      const bool leaves = i % 4 == 3;  // every 4th client hangs up after 3 events
      results[size_t(i)] = post_stream(s.port, "/v1/chat/completions", stream_request("story " + std::to_string(i), 64, uint64_t(i)),
                                       [&](const std::string&) { return !(leaves && ++seen >= 3); });
    });
  for (std::thread& t : threads) t.join();
  Clock::time_point last_first_event = Clock::time_point::min(), first_done = Clock::time_point::max();
  int finished = 0;
  for (int i = 0; i < kClients; ++i) {
    const SseResult& r = results[size_t(i)];
    ASSERT_FALSE(r.events.empty()) << "client " << i << " got nothing: status " << r.status << ", error " << r.error << ", completed " << r.completed;
    last_first_event = std::max(last_first_event, r.times.front());
    if (i % 4 == 3) {
      EXPECT_FALSE(r.completed) << "client " << i << " should have disconnected";
      continue;
    }
    ASSERT_TRUE(r.completed) << "client " << i;
    EXPECT_EQ(r.events.back(), "[DONE]") << "client " << i;
    first_done = std::min(first_done, r.times.back());
    ++finished;
  }
  EXPECT_EQ(finished, 24);
  // Progress at the same time: every stream had produced text before any finished.
  EXPECT_LT(last_first_event, first_done);
  // The 8 disconnected requests are cancelled at their next step, not decoded to the end.
  for (int i = 0; i < 400 && metric(s.port, "unmask_active_requests") != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(metric(s.port, "unmask_requests_cancelled_total"), 8);
  EXPECT_EQ(metric(s.port, "unmask_requests_completed_total"), 24);
  // Batching: far fewer forwards than requests x steps.
  EXPECT_LT(metric(s.port, "unmask_forwards_total"), 24 * 64 / 4);
}

// A non-streamed request writes nothing until it ends, so no failed write reveals that
// its client left: the engine watches the connection and cancels it at its next step.
TEST(ServerLoad, AbandonedNonStreamedRequestIsCancelledWithinAFewSteps) {
  ServerOptions o = server_options();
  o.step_delay_ms = 20;  // one slot per step, 256 slots: >= 5 s if decoded to the end
  LiveServer s(o);
  json req = stream_request("a very long story", 256, 3);
  req["stream"] = false;
  {
    httplib::Client impatient("127.0.0.1", s.port);
    impatient.set_read_timeout(0, 300 * 1000);  // gives up after 0.3 s and closes the connection
    const httplib::Result r = impatient.Post("/v1/chat/completions", req.dump(), "application/json");
    EXPECT_FALSE(r) << "the request should still be decoding when the client gives up";
  }
  const int64_t forwards_at_hangup = metric(s.port, "unmask_forwards_total");
  EXPECT_GT(forwards_at_hangup, 0) << "the request never started";
  for (int i = 0; i < 200 && metric(s.port, "unmask_requests_cancelled_total") != 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(metric(s.port, "unmask_requests_cancelled_total"), 1);
  EXPECT_EQ(metric(s.port, "unmask_active_requests"), 0);
  EXPECT_EQ(metric(s.port, "unmask_requests_completed_total"), 0);
  // The hang-up happened before the metrics call above; at 20 ms a step, the step after it
  // cancels the request. 3 steps of slack for a loaded machine that delays the metrics call.
  EXPECT_LE(metric(s.port, "unmask_forwards_total") - forwards_at_hangup, 3);
  EXPECT_LT(metric(s.port, "unmask_forwards_total"), 256 / 4) << "decoded far past the hang-up";
  // The server keeps serving: a patient client gets its whole answer.
  req["max_tokens"] = 8;
  const HttpResult after = post_json(s.port, "/v1/chat/completions", req);
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(after.json()["choices"][0]["finish_reason"].is_string(), true);
  EXPECT_EQ(metric(s.port, "unmask_requests_completed_total"), 1);
}

TEST(ServerLoad, SeededOutputDoesNotDependOnTheBatch) {
  ServerOptions o = server_options();
  o.parallel = 8;
  LiveServer s(o);
  json req = stream_request("same question", 40, 11);
  req["stream"] = false;
  const HttpResult alone = post_json(s.port, "/v1/chat/completions", req);
  ASSERT_EQ(alone.status, 200);
  std::vector<HttpResult> crowd(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      json r = i == 5 ? req : stream_request("other question " + std::to_string(i), 24 + i, uint64_t(100 + i));
      r["stream"] = false;
      crowd[size_t(i)] = post_json(s.port, "/v1/chat/completions", r);
    });
  for (std::thread& t : threads) t.join();
  for (const HttpResult& r : crowd) ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(crowd[5].json()["choices"][0], alone.json()["choices"][0]);
  EXPECT_EQ(crowd[5].json()["usage"], alone.json()["usage"]);
}

// Admission is bounded by K/V memory: with room for one request, a second waits in the
// queue until the first leaves; one that could never fit is refused.
TEST(ServerLoad, KvBudgetBoundsAdmission) {
  ServerOptions o = server_options();
  // llada-tiny: K and V, f32, 3 layers x (2 kv heads x 16) = 768 bytes per canvas slot.
  // 120 slots: one chat request (~20 prompt + 64 answer slots) fits, two do not.
  o.kv_budget_bytes = 768 * 120;
  o.step_delay_ms = 10;  // 64 steps: >= 0.64 s in flight
  LiveServer s(o);
  std::atomic<bool> started{false};
  SseResult first;
  std::thread a([&] {
    first = post_stream(s.port, "/v1/chat/completions", stream_request("story 0", 64, 0), [&](const std::string&) {
      started = true;
      return true;
    });
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  json second = stream_request("story 1", 64, 1);
  second["stream"] = false;
  const HttpResult b = post_json(s.port, "/v1/chat/completions", second);
  a.join();
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_TRUE(first.completed);
  EXPECT_GT(b.json()["diffusion"]["queue_seconds"].get<double>(), 0.1) << "admitted while the first was active";
  second["max_tokens"] = 200;  // ~220 slots > 120
  const HttpResult too_big = post_json(s.port, "/v1/chat/completions", second);
  EXPECT_EQ(too_big.status, 400);
  EXPECT_EQ(too_big.json()["error"]["code"], "context_length_exceeded");
}

TEST(ServerLoad, TimeLimitEndsARequestWithAnError) {
  ServerOptions o = server_options();
  o.request_timeout_s = 0.3;
  o.step_delay_ms = 20;  // 64 steps take >= 1.3 s
  LiveServer s(o);
  json req = stream_request("slow", 64, 1);
  req["stream"] = false;
  const HttpResult r = post_json(s.port, "/v1/chat/completions", req);
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "timeout");
  req["stream"] = true;
  const SseResult st = post_stream(s.port, "/v1/chat/completions", req);
  ASSERT_GE(st.events.size(), 2u);
  EXPECT_EQ(st.events.back(), "[DONE]");
  EXPECT_EQ(json::parse(st.events[st.events.size() - 2])["error"]["code"], "timeout");
  EXPECT_EQ(metric(s.port, "unmask_requests_timed_out_total"), 2);
}

// shutdown(): in-flight requests finish within the grace period, or are cancelled with
// an error after it; nothing is dropped, and new requests are refused meanwhile.
TEST(ServerLoad, GracefulShutdownFinishesOrCancelsInFlight) {
  for (double grace : {10.0, 0.2}) {
    ServerOptions o = server_options();
    o.step_delay_ms = 15;  // 64 steps: ~1 s
    o.shutdown_grace_s = grace;
    LiveServer s(o);
    std::atomic<bool> started{false};
    SseResult r;
    std::thread client([&] {
      r = post_stream(s.port, "/v1/chat/completions", stream_request("bye", 64, 2), [&](const std::string&) {
        started = true;
        return true;
      });
    });
    while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::thread stopper([&] { s.server.shutdown(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (grace > 1) {
      EXPECT_EQ(http_call(s.port, "GET", "/health").status, 503);
    }
    stopper.join();
    client.join();
    ASSERT_GE(r.events.size(), 2u);
    EXPECT_EQ(r.events.back(), "[DONE]");
    const json last = json::parse(r.events[r.events.size() - 2]);
    if (grace > 1) {
      EXPECT_TRUE(last["choices"][0]["finish_reason"].is_string()) << last.dump();
    } else {
      EXPECT_EQ(last["error"]["code"], "shutting_down") << last.dump();
    }
  }
}

}  // namespace
}  // namespace unmask::test
