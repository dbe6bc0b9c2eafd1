// api.h — the OpenAI-compatible request and response bodies, and the native
// diffusion-stream events.
//
// parse_request validates a JSON body against the served model and turns it into the
// engine's JobSpec; every problem becomes an ApiError naming the field (never a crash).
// The response builders only format: they own nothing and borrow the results.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "server/engine.h"
#include "unmask/model.h"
#include "unmask/tokenizer.h"

namespace unmask::server {

// An OpenAI-style error: {"error": {"message", "type", "param", "code"}} with an HTTP status.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = {}, std::string code = {},
           std::string type = "invalid_request_error")
      : std::runtime_error(message), status(status), param(std::move(param)), code(std::move(code)),
        type(std::move(type)) {}
  int status;
  std::string param, code, type;
};
std::string error_body(const ApiError& e);

enum class Endpoint { kChat, kCompletion, kDiffusion };

struct ServedModel {
  const Model& model;
  const Tokenizer& tokenizer;
  std::string name;
  int default_max_tokens = 128;
};

struct ParsedRequest {
  JobSpec spec;
  bool stream = false, include_usage = false;
  int max_tokens = 0;
};

// Throws ApiError (400 bad field, 404 unknown model).
ParsedRequest parse_request(Endpoint endpoint, const std::string& body, const ServedModel& served);

// Identity of one response: "chatcmpl-..." / "cmpl-..." id, creation time, model name.
struct ResponseHead {
  std::string id, model;
  int64_t created = 0;
};

nlohmann::json usage_json(const JobResult& r);
// The whole non-streamed response of /v1/chat/completions or /v1/completions.
nlohmann::json completion_body(Endpoint endpoint, const ResponseHead& head, const JobResult& r);
// One streamed chunk: a text delta (finish_reason null), or with `finish_reason` the
// closing chunk. Chat's first chunk carries the assistant role.
nlohmann::json stream_chunk(Endpoint endpoint, const ResponseHead& head, const std::string& text,
                            const char* finish_reason, bool first);
// The usage chunk of stream_options.include_usage: no choices.
nlohmann::json usage_chunk(Endpoint endpoint, const ResponseHead& head, const JobResult& r);
// Native stream: one denoising step (answer slots, masked and committed slots, pieces).
nlohmann::json step_event(const JobUpdate& u, const Tokenizer& tokenizer, int32_t mask_id);

// "data: <json>\n\n" (invalid UTF-8 replaced).
std::string sse(const nlohmann::json& j);

}  // namespace unmask::server
