// Live-server tests of `unmask serve` (unmask/server.h) on the llada-tiny fixture:
// OpenAI-compatible completions (plain and streamed, checked against block_decode run
// directly), the native diffusion stream, the playground assets and metrics.
// Errors: test_server_errors.cpp; concurrency and lifecycle: test_server_load.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/committed_text.h"
#include "test_server_util.h"
#include "unmask/chat_template.h"
#include "unmask/decode.h"
#include "unmask/model.h"
#include "unmask/tokenizer.h"

namespace unmask::test {
namespace {

using nlohmann::json;

// What the server should answer: block_decode with the request's options, run directly.
struct Direct {
  std::string text;
  int tokens = 0;
  bool ended = false;
};
struct DirectOptions {
  bool end_tokens = true;  // false: no end ids, every slot decoded (the request field ignore_eos)
};
Direct decode_directly(const std::vector<int32_t>& prompt, int max_tokens, double temperature, uint64_t seed,
                       const DirectOptions& extra = {}) {
  auto model = load_model(llada_dir());
  const Tokenizer tok = Tokenizer::from_dir(llada_dir());
  BlockDecoderOptions o;
  o.max_tokens = max_tokens;
  o.block_length = std::min(32, max_tokens);
  o.temperature = temperature;
  o.seed = seed;
  o.mask_id = model->config.special.mask;
  for (int32_t id : {model->config.special.eos, model->config.special.eot})
    if (id >= 0 && extra.end_tokens) o.end_ids.push_back(id);
  const BlockDecodeResult r = block_decode(model_logit_source(*model), prompt, o);
  Direct d;
  std::vector<int32_t> answer;
  for (size_t i = prompt.size(); i < r.canvas.size(); ++i) {
    if (std::find(o.end_ids.begin(), o.end_ids.end(), r.canvas[i]) != o.end_ids.end()) {
      d.ended = true;
      break;
    }
    answer.push_back(r.canvas[i]);
  }
  d.tokens = int(answer.size());
  d.text = tok.decode(answer, DecodeOptions{.skip_special = true, .clean_up_spaces = std::nullopt});
  return d;
}

std::vector<int32_t> chat_ids(const std::string& user) {
  const Tokenizer tok = Tokenizer::from_dir(llada_dir());
  return apply_chat_template(tok, {{"user", user}}).ids;
}

json chat_request(const std::string& user, int max_tokens, double temperature, uint64_t seed) {
  return {{"model", "llada-tiny"},
          {"messages", json::array({{{"role", "user"}, {"content", user}}})},
          {"max_completion_tokens", max_tokens},
          {"temperature", temperature},
          {"seed", seed}};
}

TEST(ServerApi, ModelsHealthMetricsAndPlayground) {
  LiveServer s;
  const HttpResult models = http_call(s.port, "GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.json()["object"], "list");
  EXPECT_EQ(models.json()["data"][0]["id"], "llada-tiny");
  EXPECT_EQ(http_call(s.port, "GET", "/v1/models/llada-tiny").json()["id"], "llada-tiny");
  const HttpResult health = http_call(s.port, "GET", "/health");
  ASSERT_EQ(health.status, 200);
  EXPECT_EQ(health.json()["status"], "ok");
  const HttpResult page = http_call(s.port, "GET", "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("id=\"canvas\""), std::string::npos);
  EXPECT_EQ(http_call(s.port, "GET", "/app.js").status, 200);
  EXPECT_EQ(http_call(s.port, "GET", "/style.css").status, 200);
  ASSERT_EQ(post_json(s.port, "/v1/chat/completions", chat_request("hi", 8, 0, 0)).status, 200);
  const std::vector<std::string> names = {"unmask_requests_completed_total 1", "unmask_queue_depth 0",
                                          "unmask_tokens_per_second", "unmask_forwards_per_second",
                                          "unmask_forwards_total",
                                          "unmask_http_responses_total{path=\"/v1/chat/completions\",status=\"200\"} 1"};
  const auto has_all = [&](const std::string& body) {
    return std::all_of(names.begin(), names.end(), [&](const std::string& n) { return body.find(n) != std::string::npos; });
  };
  // A response is counted once it has been written, which can be just after the client has
  // read it: poll briefly (up to ~2 s) rather than race the server's bookkeeping.
  HttpResult metrics = http_call(s.port, "GET", "/metrics");
  for (int tries = 0; tries < 100 && metrics.status == 200 && !has_all(metrics.body); ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    metrics = http_call(s.port, "GET", "/metrics");
  }
  ASSERT_EQ(metrics.status, 200);
  for (const std::string& name : names)
    EXPECT_NE(metrics.body.find(name), std::string::npos) << name << "\n" << metrics.body;
}

TEST(ServerApi, ChatCompletionMatchesDirectDecode) {
  LiveServer s;
  for (double temperature : {0.0, 0.9}) {
    const HttpResult r = post_json(s.port, "/v1/chat/completions", chat_request("Tell me a story", 40, temperature, 7));
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = r.json();
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["model"], "llada-tiny");
    const Direct d = decode_directly(chat_ids("Tell me a story"), 40, temperature, 7);
    EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(j["choices"][0]["message"]["content"], d.text) << "temperature " << temperature;
    EXPECT_EQ(j["choices"][0]["finish_reason"], d.ended ? "stop" : "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], d.tokens);
    EXPECT_EQ(j["usage"]["prompt_tokens"], int(chat_ids("Tell me a story").size()));
    EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + d.tokens);
  }
}

// ignore_eos: an answer that would end at an end token is decoded to the token limit.
TEST(ServerApi, IgnoreEosDecodesEverySlot) {
  constexpr int kMaxTokens = 64;
  // llada-tiny rarely commits its end token: sample hot (temperature 2) and look for a seed
  // whose answer ends early, so that the field has something to change.
  constexpr double kTemperature = 2.0;
  const std::vector<int32_t> prompt = chat_ids("Tell me a story");
  uint64_t seed = 0;
  while (seed < 256 && !decode_directly(prompt, kMaxTokens, kTemperature, seed).ended) ++seed;
  ASSERT_LT(seed, 256u) << "no seed's answer ends before " << kMaxTokens << " tokens";
  LiveServer s;
  json req = chat_request("Tell me a story", kMaxTokens, kTemperature, seed);
  const json ended = post_json(s.port, "/v1/chat/completions", req).json();
  EXPECT_EQ(ended["choices"][0]["finish_reason"], "stop") << ended.dump();
  EXPECT_LT(ended["usage"]["completion_tokens"].get<int>(), kMaxTokens);
  req["ignore_eos"] = true;
  const HttpResult full = post_json(s.port, "/v1/chat/completions", req);
  ASSERT_EQ(full.status, 200) << full.body;
  const Direct d = decode_directly(prompt, kMaxTokens, kTemperature, seed, {.end_tokens = false});
  EXPECT_EQ(full.json()["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(full.json()["usage"]["completion_tokens"], kMaxTokens);
  EXPECT_EQ(full.json()["choices"][0]["message"]["content"], d.text);
  req["ignore_eos"] = "yes";
  EXPECT_EQ(post_json(s.port, "/v1/chat/completions", req).status, 400);
}

TEST(ServerApi, StreamedChatEqualsPlainAndEndsWithUsageAndDone) {
  LiveServer s;
  json req = chat_request("Write a poem", 48, 0.8, 3);
  const HttpResult plain = post_json(s.port, "/v1/chat/completions", req);
  ASSERT_EQ(plain.status, 200);
  req["stream"] = true;
  req["stream_options"] = {{"include_usage", true}};
  const SseResult st = post_stream(s.port, "/v1/chat/completions", req);
  ASSERT_EQ(st.status, 200);
  ASSERT_TRUE(st.completed);
  ASSERT_GE(st.events.size(), 3u);
  EXPECT_EQ(st.events.back(), "[DONE]");
  std::string text;
  const json first = json::parse(st.events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  for (size_t i = 0; i + 3 < st.events.size(); ++i) {
    const json c = json::parse(st.events[i]);
    EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
    text += c["choices"][0]["delta"].value("content", "");
  }
  const json finish = json::parse(st.events[st.events.size() - 3]);
  const json usage = json::parse(st.events[st.events.size() - 2]);
  EXPECT_EQ(text, plain.json()["choices"][0]["message"]["content"]);
  EXPECT_EQ(finish["choices"][0]["finish_reason"], plain.json()["choices"][0]["finish_reason"]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"], plain.json()["usage"]);
}

// Finds a seeded answer long enough to cut, then asks again with a piece of it as stop.
TEST(ServerApi, StopStringIsExcludedAndFinishesWithStop) {
  LiveServer s;
  json req = {{"prompt", "Once upon a time"}, {"max_tokens", 48}, {"temperature", 1.0}};
  std::string text;
  for (int seed = 0; seed < 20 && text.size() < 16; ++seed) {
    req["seed"] = seed;
    const HttpResult r = post_json(s.port, "/v1/completions", req);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["object"], "text_completion");
    text = r.json()["choices"][0]["text"];
  }
  ASSERT_GE(text.size(), 16u) << "no seed gave an answer of 16+ bytes";
  // A 4+ byte piece of the text, cut at UTF-8 character boundaries (continuation bytes are 10xxxxxx).
  auto boundary = [&](size_t i) {
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
    return i;
  };
  const size_t stop_begin = boundary(6);
  const std::string stop = text.substr(stop_begin, boundary(stop_begin + 4) - stop_begin);
  ASSERT_FALSE(stop.empty());
  const std::string expected = text.substr(0, text.find(stop));
  req["stop"] = json::array({"never-in-the-text-\x01", stop});
  const HttpResult cut = post_json(s.port, "/v1/completions", req);
  ASSERT_EQ(cut.status, 200);
  EXPECT_EQ(cut.json()["choices"][0]["text"], expected);
  EXPECT_EQ(cut.json()["choices"][0]["finish_reason"], "stop");
  req["stream"] = true;
  const SseResult st = post_stream(s.port, "/v1/completions", req);
  std::string streamed;
  for (const std::string& e : st.events)
    if (e != "[DONE]") streamed += json::parse(e)["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(streamed, expected);
}

TEST(ServerApi, SuffixInfillsBetweenPromptAndSuffix) {
  LiveServer s;
  const HttpResult r = post_json(s.port, "/v1/completions",
                                 {{"prompt", "def add(a, b):"}, {"suffix", "print(add(1, 2))"}, {"max_tokens", 12}});
  ASSERT_EQ(r.status, 200) << r.body;
  // Expected: block_infill over prompt | 12 masks | suffix, text up to the first end token.
  auto model = load_model(llada_dir());
  const Tokenizer tok = Tokenizer::from_dir(llada_dir());
  std::vector<int32_t> canvas = tok.encode("def add(a, b):", EncodeOptions{.add_special_tokens = true});
  const size_t begin = canvas.size();
  canvas.insert(canvas.end(), 12, model->config.special.mask);
  for (int32_t id : tok.encode("print(add(1, 2))", EncodeOptions{.add_special_tokens = false})) canvas.push_back(id);
  BlockDecoderOptions o;
  o.block_length = 12;
  o.mask_id = model->config.special.mask;
  o.end_ids = {model->config.special.eos};
  if (model->config.special.eot >= 0) o.end_ids.push_back(model->config.special.eot);
  const BlockDecodeResult direct = block_infill(model_logit_source(*model), canvas, o);
  std::vector<int32_t> hole;
  for (size_t i = begin; i < begin + 12; ++i) {
    if (std::find(o.end_ids.begin(), o.end_ids.end(), direct.canvas[i]) != o.end_ids.end()) break;
    hole.push_back(direct.canvas[i]);
  }
  EXPECT_EQ(r.json()["choices"][0]["text"],
            tok.decode(hole, DecodeOptions{.skip_special = true, .clean_up_spaces = std::nullopt}));
  EXPECT_EQ(r.json()["usage"]["completion_tokens"], int(hole.size()));
}

TEST(ServerApi, DiffusionStreamReportsEveryStep) {
  LiveServer s;
  json req = chat_request("hello", 24, 0, 0);
  req["algorithm"] = "topn";
  req["steps"] = 12;  // 2 slots per step
  req["block_length"] = 8;
  const SseResult st = post_stream(s.port, "/v1/diffusion/stream", req);
  ASSERT_EQ(st.status, 200);
  ASSERT_GE(st.events.size(), 3u);
  EXPECT_EQ(st.events.back(), "[DONE]");
  const json done = json::parse(st.events[st.events.size() - 2]);
  ASSERT_TRUE(done.value("done", false)) << done.dump();
  std::set<int> committed_so_far;
  int last_step = 0;
  json canvas;
  for (size_t i = 0; i + 2 < st.events.size(); ++i) {
    const json e = json::parse(st.events[i]);
    EXPECT_EQ(e["step"], last_step + 1);
    last_step = e["step"];
    canvas = e["canvas"];
    ASSERT_EQ(e["committed"].size(), e["pieces"].size());
    EXPECT_EQ(e["committed"].size(), 2u) << "topn with 2 slots per step";
    for (int slot : e["committed"]) {
      EXPECT_TRUE(committed_so_far.insert(slot).second) << "slot " << slot << " committed twice";
      EXPECT_NE(canvas[size_t(slot)], 504);
    }
    for (int slot : e["masked"]) EXPECT_EQ(canvas[size_t(slot)], 504);
    EXPECT_EQ(e["masked"].size() + committed_so_far.size(), canvas.size());
  }
  EXPECT_EQ(done["steps"], last_step);
  EXPECT_TRUE(done["finish_reason"] == "stop" || done["finish_reason"] == "length");
}

// CommittedText: the text of a growing committed prefix, stop strings excluded.
TEST(ServerCommittedText, StreamsPrefixHoldsBackStopPrefixAndCuts) {
  const Tokenizer tok = Tokenizer::from_dir(llada_dir());
  const std::vector<int32_t> ids = tok.encode("the cat sat on the mat", EncodeOptions{.add_special_tokens = false});
  ASSERT_GE(ids.size(), 4u);
  const int32_t mask = 504;
  // No stop strings: text appears exactly as the prefix grows, never past a mask.
  server::CommittedText plain(tok, mask, {501}, {});
  std::vector<int32_t> answer(ids.size(), mask);
  answer[1] = ids[1];  // committed, but not the prefix yet
  EXPECT_EQ(plain.update(answer), "");
  answer[0] = ids[0];
  std::string streamed = plain.update(answer);
  EXPECT_EQ(streamed, tok.decode(std::vector<int32_t>(ids.begin(), ids.begin() + 2)));
  for (size_t i = 2; i < ids.size(); ++i) {
    answer[i] = ids[i];
    streamed += plain.update(answer);
  }
  streamed += plain.finish();
  EXPECT_EQ(streamed, "the cat sat on the mat");
  EXPECT_EQ(plain.tokens(), int(ids.size()));
  // Stop string "on the": held back while it may be starting, cut when complete.
  server::CommittedText cut(tok, mask, {501}, {"on the"});
  std::string out;
  for (size_t i = 0; i < ids.size() && !cut.stopped(); ++i) {
    std::vector<int32_t> prefix(ids.begin(), ids.begin() + std::ptrdiff_t(i + 1));
    out += cut.update(prefix);
    EXPECT_EQ(std::string("the cat sat on the mat").find(out), 0u);
  }
  out += cut.finish();
  EXPECT_TRUE(cut.stopped());
  EXPECT_EQ(out, "the cat sat ");
  // An end token ends the text; nothing after it counts.
  server::CommittedText ended(tok, mask, {501}, {});
  std::vector<int32_t> with_end = {ids[0], 501, ids[1]};
  EXPECT_EQ(ended.update(with_end) + ended.finish(), tok.decode(std::vector<int32_t>{ids[0]}));
  EXPECT_TRUE(ended.ended());
  EXPECT_EQ(ended.tokens(), 1);
}

}  // namespace
}  // namespace unmask::test
