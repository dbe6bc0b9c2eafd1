#include "server/api.h"

#include <algorithm>
#include <random>

#include "unmask/chat_template.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask::server {

using nlohmann::json;

namespace {

// Upper bounds that keep a request's work proportional to its tokens.
constexpr size_t kMaxStopStrings = 16;
constexpr int kMaxBlockLength = 4096;

ApiError bad_type(const std::string& field, const char* expected) {
  return ApiError(400, "'" + field + "' must be " + expected, field, "invalid_type");
}

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::optional<double> opt_number(const json& body, const char* name, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw bad_type(name, "a number");
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi))
    throw ApiError(400, "'" + std::string(name) + "' is " + v->dump() + "; it must lie in [" + json(lo).dump() + ", " +
                            json(hi).dump() + "]",
                   name, "invalid_value");
  return x;
}

std::optional<int64_t> opt_int(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) throw bad_type(name, "an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX))
    throw ApiError(400, "'" + std::string(name) + "' is out of range", name, "invalid_value");
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    throw ApiError(400, "'" + std::string(name) + "' is " + std::to_string(x) + "; it must lie in [" +
                            std::to_string(lo) + ", " + std::to_string(hi) + "]",
                   name, "invalid_value");
  return x;
}

std::optional<std::string> opt_string(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw bad_type(name, "a string");
  return v->get<std::string>();
}

std::optional<bool> opt_bool(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) throw bad_type(name, "a boolean");
  return v->get<bool>();
}

// Message content: a string, or an array of {"type": "text", "text": ...} parts.
std::string message_content(const json& m, size_t index) {
  const std::string param = "messages[" + std::to_string(index) + "].content";
  const json* c = field(m, "content");
  if (!c) return {};
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) throw bad_type(param, "a string or an array of text parts");
  std::string text;
  for (const json& part : *c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      throw ApiError(400, "'" + param + "': only text parts ({\"type\": \"text\", \"text\": ...}) are supported", param,
                     "invalid_value");
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<int32_t> chat_prompt(const json& body, const ServedModel& served) {
  const json* messages = field(body, "messages");
  if (!messages) throw ApiError(400, "'messages' is required", "messages", "missing_required_parameter");
  if (!messages->is_array()) throw bad_type("messages", "an array");
  if (messages->empty()) throw ApiError(400, "'messages' must not be empty", "messages", "empty_array");
  std::vector<ChatMessage> chat;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw bad_type(param, "an object");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) throw bad_type(param + ".role", "a string");
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "tool" && r != "developer")
      throw ApiError(400, "'" + param + ".role' is '" + r + "'; expected system, user, assistant, tool or developer",
                     param + ".role", "invalid_value");
    chat.push_back({r == "developer" ? "system" : r, message_content(m, i)});
  }
  try {
    return apply_chat_template(served.tokenizer, chat).ids;
  } catch (const Error& e) {
    throw ApiError(400, std::string("the chat template failed on these messages: ") + e.what(), "messages",
                   "invalid_value");
  }
}

// /v1/completions prompt: a string, an array holding one string, or an array of token ids.
std::vector<int32_t> text_prompt(const json& body, const ServedModel& served) {
  const json* p = field(body, "prompt");
  if (!p) throw ApiError(400, "'prompt' is required", "prompt", "missing_required_parameter");
  const EncodeOptions encode{.parse_special = false, .add_special_tokens = true};
  if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
  if (p->is_string()) {
    if (p->get<std::string>().empty()) throw ApiError(400, "'prompt' must not be empty", "prompt", "invalid_value");
    return served.tokenizer.encode(p->get<std::string>(), encode);
  }
  if (!p->is_array() || p->empty()) throw bad_type("prompt", "a non-empty string or an array of token ids");
  std::vector<int32_t> ids;
  for (const json& id : *p) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= served.model.config.vocab)
      throw ApiError(400, "'prompt' holds " + id.dump() + ", which is no token id of this model (vocabulary " +
                              std::to_string(served.model.config.vocab) + ")",
                     "prompt", "invalid_value");
    ids.push_back(int32_t(id.get<int64_t>()));
  }
  return ids;
}

std::vector<std::string> stop_strings(const json& body) {
  const json* s = field(body, "stop");
  if (!s) return {};
  if (s->is_string()) return {s->get<std::string>()};
  if (!s->is_array()) throw bad_type("stop", "a string or an array of strings");
  if (s->size() > kMaxStopStrings)
    throw ApiError(400, "'stop' holds more than " + std::to_string(kMaxStopStrings) + " strings", "stop", "invalid_value");
  std::vector<std::string> out;
  for (const json& x : *s) {
    if (!x.is_string()) throw bad_type("stop", "a string or an array of strings");
    out.push_back(x.get<std::string>());
  }
  return out;
}

// Diffusion options (extra request fields) and sampling, over the model's defaults.
BlockDecoderOptions decode_options(const json& body, const ServedModel& served, int max_tokens) {
  const Model& m = served.model;
  BlockDecoderOptions o;
  o.max_tokens = max_tokens;
  o.block_length = int(opt_int(body, "block_length", 1, kMaxBlockLength).value_or(std::min(32, max_tokens)));
  o.steps = int(opt_int(body, "steps", 0, 1 << 20).value_or(0));
  if (auto cache = opt_string(body, "cache"); cache && !parse_block_cache(*cache, &o.cache))
    throw ApiError(400, "'cache' is '" + *cache + "'; expected none, prefix, dual, window or delayed", "cache", "invalid_value");
  const std::optional<double> factor = opt_number(body, "factor", 1e-6, 1e6);
  std::string algorithm = factor ? "factor" : "threshold";
  if (auto a = opt_string(body, "algorithm")) algorithm = *a;
  if (!parse_block_commit(algorithm, &o.commit))
    throw ApiError(400, "'algorithm' is '" + algorithm + "'; expected topn, threshold, factor or dynamic", "algorithm",
                   "invalid_value");
  if (auto score = opt_string(body, "score"); score && !parse_block_score(*score, &o.score))
    throw ApiError(400, "'score' is '" + *score + "'; expected confidence, margin or entropy", "score", "invalid_value");
  // A threshold of 0 would commit a whole block in one step; the decoder needs (0, 1].
  o.threshold = opt_number(body, "threshold", 1e-6, 1.0).value_or(o.threshold);
  o.factor = factor.value_or(o.factor);
  o.refresh_window = int(opt_int(body, "refresh_window", 0, kMaxBlockLength).value_or(o.refresh_window));
  const GenerationDefaults& g = m.generation;
  o.temperature = opt_number(body, "temperature", 0.0, 2.0).value_or(g.has_temperature ? g.temperature : 0.0);
  o.top_p = opt_number(body, "top_p", 1e-6, 1.0).value_or(g.has_top_p ? g.top_p : 1.0);
  o.top_k = int(opt_int(body, "top_k", 0, m.config.vocab).value_or(g.has_top_k ? g.top_k : 0));
  if (auto seed = opt_int(body, "seed", INT64_MIN, INT64_MAX)) o.seed = uint64_t(*seed);
  else if (o.temperature > 0) o.seed = std::random_device{}();
  o.mask_id = m.config.special.mask;
  for (int32_t id : {m.config.special.eos, m.config.special.eot})
    if (id >= 0) o.end_ids.push_back(id);
  for (int32_t id : g.eos_ids)
    if (id >= 0 && std::find(o.end_ids.begin(), o.end_ids.end(), id) == o.end_ids.end()) o.end_ids.push_back(id);
  // Extra field (as in vLLM): decode every one of max_tokens slots, end tokens included,
  // so that a load benchmark's requests all do the same work.
  if (opt_bool(body, "ignore_eos").value_or(false)) o.end_ids.clear();
  return o;
}

}  // namespace

std::string error_body(const ApiError& e) {
  return json{{"error",
               {{"message", e.what()},
                {"type", e.type},
                {"param", e.param.empty() ? json(nullptr) : json(e.param)},
                {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

ParsedRequest parse_request(Endpoint endpoint, const std::string& body_text, const ServedModel& served) {
  const json body = json::parse(body_text, nullptr, false);
  if (body.is_discarded())
    throw ApiError(400, "the request body is not valid JSON", "", "invalid_json");
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object", "", "invalid_json");
  if (auto model = opt_string(body, "model"); model && *model != served.name)
    throw ApiError(404, "the model '" + *model + "' does not exist; this server serves '" + served.name + "'", "model",
                   "model_not_found");
  if (auto n = opt_int(body, "n", 1, INT64_MAX); n && *n != 1)
    throw ApiError(400, "'n' must be 1: one choice per request", "n", "invalid_value");
  const Model& m = served.model;
  if (m.config.special.mask < 0) throw ApiError(500, "the served model declares no mask token", "", "", "server_error");

  ParsedRequest out;
  const int64_t context = m.config.max_context > 0 ? m.config.max_context : INT32_MAX;
  const char* limit_field = field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  out.max_tokens = int(opt_int(body, limit_field, 1, context).value_or(served.default_max_tokens));
  out.stream = opt_bool(body, "stream").value_or(false) || endpoint == Endpoint::kDiffusion;
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw bad_type("stream_options", "an object");
    out.include_usage = opt_bool(*so, "include_usage").value_or(false);
  }
  JobSpec& spec = out.spec;
  const bool chat = endpoint == Endpoint::kChat || (endpoint == Endpoint::kDiffusion && body.contains("messages"));
  std::vector<int32_t> prompt = chat ? chat_prompt(body, served) : text_prompt(body, served);
  if (prompt.empty()) throw ApiError(400, "the prompt encodes to no tokens", chat ? "messages" : "prompt", "invalid_value");
  spec.answer_begin = int(prompt.size());
  spec.answer_length = out.max_tokens;
  const std::optional<std::string> suffix = endpoint == Endpoint::kChat ? std::nullopt : opt_string(body, "suffix");
  std::vector<int32_t> suffix_ids;
  if (suffix && !suffix->empty())
    suffix_ids = served.tokenizer.encode(*suffix, EncodeOptions{.parse_special = false, .add_special_tokens = false});
  const int64_t total = int64_t(prompt.size()) + out.max_tokens + int64_t(suffix_ids.size());
  if (total > context)
    throw ApiError(400, "this request needs " + std::to_string(total) + " tokens (prompt " + std::to_string(prompt.size()) +
                            (suffix_ids.empty() ? "" : ", suffix " + std::to_string(suffix_ids.size())) + ", " +
                            limit_field + " " + std::to_string(out.max_tokens) + ") but the model's context is " +
                            std::to_string(context),
                   prompt.size() >= size_t(context) ? (chat ? "messages" : "prompt") : limit_field,
                   "context_length_exceeded");
  spec.options = decode_options(body, served, out.max_tokens);
  spec.stop = stop_strings(body);
  spec.want_canvas = endpoint == Endpoint::kDiffusion;
  if (suffix) {  // infilling: prompt | max_tokens holes | suffix, decoded by block_infill
    spec.infill = true;
    prompt.insert(prompt.end(), size_t(out.max_tokens), spec.options.mask_id);
    prompt.insert(prompt.end(), suffix_ids.begin(), suffix_ids.end());
  }
  spec.prompt = std::move(prompt);
  return out;
}

json usage_json(const JobResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens}};
}

namespace {
json head_json(Endpoint endpoint, const ResponseHead& head, bool chunk) {
  const char* object = endpoint == Endpoint::kChat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                                   : "text_completion";
  return {{"id", head.id}, {"object", object}, {"created", head.created}, {"model", head.model}};
}
}  // namespace

json completion_body(Endpoint endpoint, const ResponseHead& head, const JobResult& r) {
  json j = head_json(endpoint, head, false);
  json choice = {{"index", 0}, {"finish_reason", r.finish_reason}, {"logprobs", nullptr}};
  if (endpoint == Endpoint::kChat) choice["message"] = {{"role", "assistant"}, {"content", r.text}};
  else choice["text"] = r.text;
  j["choices"] = json::array({choice});
  j["usage"] = usage_json(r);
  // Diffusion extras: forwards this request took part in and where its time went.
  j["diffusion"] = {{"steps", r.steps}, {"queue_seconds", r.queue_seconds}, {"decode_seconds", r.decode_seconds}};
  return j;
}

json stream_chunk(Endpoint endpoint, const ResponseHead& head, const std::string& text, const char* finish_reason,
                  bool first) {
  json j = head_json(endpoint, head, true);
  json choice = {{"index", 0}, {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)},
                 {"logprobs", nullptr}};
  if (endpoint == Endpoint::kChat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!finish_reason) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  return j;
}

json usage_chunk(Endpoint endpoint, const ResponseHead& head, const JobResult& r) {
  json j = head_json(endpoint, head, true);
  j["choices"] = json::array();
  j["usage"] = usage_json(r);
  return j;
}

json step_event(const JobUpdate& u, const Tokenizer& tokenizer, int32_t mask_id) {
  json masked = json::array(), pieces = json::array();
  for (size_t i = 0; i < u.answer.size(); ++i)
    if (u.answer[i] == mask_id) masked.push_back(i);
  for (int32_t slot : u.committed) {
    const int32_t id = u.answer[size_t(slot)];
    pieces.push_back(tokenizer.is_special(id) ? tokenizer.id_to_token(id)
                                              : tokenizer.decode(std::span<const int32_t>(&id, 1)));
  }
  return {{"step", u.step}, {"canvas", u.answer}, {"masked", masked}, {"committed", u.committed},
          {"pieces", pieces}, {"text", u.text_delta}};
}

std::string sse(const json& j) { return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"; }

}  // namespace unmask::server
