// `unmask conform`: generate cases of the block-causal families — dFactory's
// LLaDA2MoeModelLM.generate, SDAR's block_diffusion_generate and Fast-dLLM v2's
// Fast_dLLM_QwenForCausalLM.generate. Every call's canvas, window and the final ids are
// compared with the manifest (states rows, call lists, final_ids).
#include <algorithm>

#include "conform_fixture.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask::cli::conform {

namespace {

enum class BlockKind { kLlada2, kSdar, kFastDllmV2 };

// What the decoder fed the model at one call.
struct Call {
  std::vector<int64_t> canvas;
  int begin = 0, end = 0;
  bool store = false;
};

// The references sample with torch.multinomial whatever the temperature; only top_k = 1
// makes the draw deterministic (one-hot probabilities). Returns the SKIP reason or "".
std::string sampled_reason(BlockKind kind, const Kwargs& kw) {
  if (kind == BlockKind::kFastDllmV2)
    return kw.number("temperature", 0) > 0 ? "samples with torch's RNG (temperature > 0)" : "";
  if (kw.is_null("top_k") || kw.integer("top_k", 0) != 1)
    return "samples with torch's RNG (multinomial even at temperature 0; only top_k = 1 is deterministic)";
  return "";
}

std::vector<std::vector<int64_t>> states_rows(const Fixture& fx, const json& g, bool strip_padding) {
  if (!g.contains("states_file") || !g["states_file"].is_string()) fail("no states_file");
  const NpyArray states = load_fixture_npy(fx, g["states_file"].get<std::string>());
  if (states.shape.size() != 2) fail("states: expected 2-D [rows, length], got " + states.shape_string());
  const std::vector<int64_t> flat = states.to_i64();
  std::vector<std::vector<int64_t>> rows;
  for (int64_t r = 0; r < states.shape[0]; ++r) {
    std::vector<int64_t> row(flat.begin() + r * states.shape[1], flat.begin() + (r + 1) * states.shape[1]);
    while (strip_padding && !row.empty() && row.back() == -1) row.pop_back();
    rows.push_back(std::move(row));
  }
  return rows;
}

void compare_ids(const json& g, const std::vector<int32_t>& got, const char* key) {
  if (!g.contains(key)) return;
  if (!g[key].is_array()) fail(std::string(key) + ": expected a list");
  std::vector<int64_t> want;
  for (const auto& v : g[key]) want.push_back(v.is_number_integer() ? v.get<int64_t>() : -1);
  compare_states({std::vector<int64_t>(got.begin(), got.end())}, {want});
}

// Manifest call descriptions against ours: SDAR {start, len, store_kv}; Fast-dLLM v2
// {len, replace_position (sub-block offset, null for whole-block calls)}; LLaDA2
// model_input_lengths.
void compare_call_list(BlockKind kind, const json& g, const std::vector<Call>& calls, int block) {
  if (g.contains("n_model_calls") && g["n_model_calls"].is_number_integer() &&
      g["n_model_calls"].get<size_t>() != calls.size())
    fail(std::to_string(calls.size()) + " model calls, manifest n_model_calls is " + g["n_model_calls"].dump());
  const char* key = kind == BlockKind::kLlada2 ? "model_input_lengths" : "calls";
  if (!g.contains(key)) return;
  const json& want = g[key];
  if (!want.is_array() || want.size() != calls.size()) fail(std::string(key) + ": manifest lists another call count");
  for (size_t i = 0; i < calls.size(); ++i) {
    const Call& c = calls[i];
    const json& w = want[i];
    const std::string at = "call " + std::to_string(i) + ": ";
    if (kind == BlockKind::kLlada2) {
      if (!w.is_number_integer() || w.get<int>() != c.end) fail(at + "input length " + std::to_string(c.end) + ", manifest " + w.dump());
      continue;
    }
    if (!w.is_object() || !w.contains("len")) fail(at + "manifest entry has no len");
    if (w["len"] != c.end - c.begin) fail(at + "length " + std::to_string(c.end - c.begin) + ", manifest " + w.dump());
    if (kind == BlockKind::kSdar && (w.value("start", -1) != c.begin || w.value("store_kv", !c.store) != c.store))
      fail(at + "start " + std::to_string(c.begin) + " store_kv " + (c.store ? "true" : "false") + ", manifest " + w.dump());
    if (kind == BlockKind::kFastDllmV2 && w.contains("replace_position")) {
      const json& rp = w["replace_position"];
      const bool sub = c.end - c.begin < block;
      if (sub != rp.is_number_integer() || (sub && rp.get<int>() != c.begin % block))
        fail(at + "window [" + std::to_string(c.begin) + ", " + std::to_string(c.end) + "), manifest " + w.dump());
    }
  }
}

}  // namespace

std::optional<std::string> block_family_case(Fixture& fx, const json& g, const std::string& function) {
  BlockKind kind;
  if (function.find("LLaDA2MoeModelLM.generate") != std::string::npos) kind = BlockKind::kLlada2;
  else if (function.find("block_diffusion_generate") != std::string::npos) kind = BlockKind::kSdar;
  else if (function.find("Fast_dLLM_QwenForCausalLM.generate") != std::string::npos) kind = BlockKind::kFastDllmV2;
  else return std::nullopt;
  const json kwargs_json = g.contains("kwargs") ? g["kwargs"] : json::object();
  std::vector<std::string> known;
  if (kind == BlockKind::kLlada2)
    known = {"temperature", "block_length", "steps", "gen_length", "top_k", "top_p", "threshold",
             "eos_id", "mask_id", "eos_early_stop", "minimal_topk"};
  else if (kind == BlockKind::kSdar)
    known = {"mask_id", "gen_length", "block_length", "denoising_steps", "temperature", "top_k", "top_p",
             "remasking_strategy", "confidence_threshold", "eb_threshold", "stopping_criteria_idx"};
  else
    known = {"max_new_tokens", "mask_id", "threshold", "small_block_size", "block_size", "stop_token",
             "top_p", "temperature", "use_block_cache"};
  const Kwargs kw(kwargs_json, known);
  if (std::string why = sampled_reason(kind, kw); !why.empty()) return why;
  const std::vector<int32_t> prompt = case_prompt(fx, g);
  const std::vector<std::vector<int64_t>> want = states_rows(fx, g, kind == BlockKind::kFastDllmV2);
  const int block = kind == BlockKind::kFastDllmV2 ? kw.integer("block_size", 32)
                    : kind == BlockKind::kSdar     ? kw.integer("block_length", 4)
                                                   : kw.integer("block_length", 32);
  const Model& model = fixture_model(fx, weights_file(fx, false));
  // Reference precision: the fixtures certify each trajectory under a float64 model.
  const LogitSource inner =
      model_logit_source(model, LogitSourceOptions{.reference_precision = true, .attention_block = block});
  std::vector<Call> calls;
  LogitSource src = inner;
  src.score = [&](const std::vector<std::vector<int32_t>>& canvases, const std::vector<int32_t>& slots,
                  std::vector<float>& out) {
    calls.push_back({{canvases.at(0).begin(), canvases.at(0).end()}, 0, int(canvases.at(0).size()), false});
    inner.score(canvases, slots, out);
  };
  src.score_cached = [&](const std::vector<int32_t>& canvas, const CachedQuery& q, std::vector<float>& out) {
    calls.push_back({{canvas.begin(), canvas.end()}, q.query_begin, q.query_end, q.store_kv});
    inner.score_cached(canvas, q, out);
  };
  std::vector<int32_t> final_canvas, output;
  const int32_t mask_id = case_mask_id(fx, kw, "mask_id");
  try {
    if (kind == BlockKind::kLlada2) {
      Llada2GenerateOptions o;
      o.gen_length = kw.integer("gen_length", 2048);
      o.block_length = block;
      o.steps = kw.integer("steps", 32);
      o.minimal_topk = kw.integer("minimal_topk", 1);
      o.threshold = kw.number("threshold", 0.95);
      o.temperature = kw.number("temperature", 0);
      o.top_k = kw.integer("top_k", 0);
      o.top_p = kw.number("top_p", 1.0);
      o.mask_id = mask_id;
      o.eos_id = kw.integer("eos_id", model.config.special.eos);
      o.eos_early_stop = kw.boolean("eos_early_stop", false);
      BlockGenerateResult r = llada2_generate(src, prompt, o);
      final_canvas = r.canvas;
      output = r.output;
    } else if (kind == BlockKind::kSdar) {
      SdarGenerateOptions o;
      o.gen_length = kw.integer("gen_length", 128);
      o.block_length = block;
      o.denoising_steps = kw.integer("denoising_steps", 4);
      o.temperature = kw.number("temperature", 1.0);
      o.top_k = kw.integer("top_k", 0);
      o.top_p = kw.number("top_p", 1.0);
      if (!parse_sdar_strategy(kw.string("remasking_strategy", "low_confidence_dynamic"), &o.strategy))
        fail("kwargs.remasking_strategy: unknown");
      o.confidence_threshold = kw.number("confidence_threshold", 0.85);
      o.eb_threshold = kw.number("eb_threshold", 0.35);
      o.mask_id = mask_id;
      if (kw.has("stopping_criteria_idx") && !kw.is_null("stopping_criteria_idx"))
        for (const auto& v : kwargs_json["stopping_criteria_idx"]) o.stop_ids.push_back(v.get<int32_t>());
      final_canvas = output = sdar_generate(src, prompt, o);
    } else {
      FastDllmV2Options o;
      o.max_new_tokens = kw.integer("max_new_tokens", 512);
      o.block_size = block;
      o.small_block_size = kw.integer("small_block_size", 8);
      o.threshold = kw.number("threshold", 1.0);
      o.temperature = kw.number("temperature", 0);
      o.top_p = kw.number("top_p", 0.95);
      o.use_block_cache = kw.boolean("use_block_cache", false);
      o.mask_id = mask_id;
      o.stop_token = kw.integer("stop_token", model.config.special.eos);
      final_canvas = output = fast_dllm_v2_generate(src, prompt, o);
    }
  } catch (const Error& e) {
    fail(std::string("decoder: ") + e.what());
  }
  std::vector<std::vector<int64_t>> got;
  for (const Call& c : calls) got.push_back(c.canvas);
  got.emplace_back(final_canvas.begin(), final_canvas.end());
  // LLaDA2's recorded last row is the canvas before the last call with the returned ids
  // written over it (later slots as before that call).
  if (kind == BlockKind::kLlada2 && !calls.empty()) {
    got.back() = calls.back().canvas;
    got.back().resize(final_canvas.size(), mask_id);
    std::copy(output.begin(), output.end(), got.back().begin());
  }
  // LLaDA2 feeds the canvas up to the block's end; the recorded rows are the whole
  // canvas, whose later slots still hold the mask id.
  if (kind == BlockKind::kLlada2)
    for (size_t r = 0; r < got.size() && r < want.size(); ++r)
      if (got[r].size() < want[r].size()) got[r].resize(want[r].size(), mask_id);
  compare_states(got, want);
  compare_call_list(kind, g, calls, block);
  compare_ids(g, output, "final_ids");
  return std::string();
}

}  // namespace unmask::cli::conform
