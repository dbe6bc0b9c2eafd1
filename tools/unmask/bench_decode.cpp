// `unmask bench --prompt-len / --gen-length / --cache ...`: whole generations with the
// block decoder, one configuration per (cache policy, batch size).
//
// Each configuration decodes `batch` canvases [prompt | gen_length masks] together with
// batch_decode_step (one forward per step for all canvases), block_length blocks, one
// token per step (top-n, the Done-when setting) or --threshold T (threshold rule). No end
// tokens: every slot is generated, so configurations do the same work. Per configuration:
//   ms_per_forward           wall ms per step (= per forward), mean over the steps run;
//                            ms_full_forward / ms_partial_forward split it into steps that
//                            recompute whole canvases (no cache; block starts) and the rest
//   gen_tokens_per_s         generated tokens (all canvases) per second of wall time
//   nfe_per_token            forwards per generated token of one canvas
//   query_tokens_per_forward rows fed per forward (all canvases)
//   weight_bytes_per_step    weight bytes the forward read per step
//   matches_no_cache         every canvas equals the no-cache run's (when one was complete)
// --max-steps N stops a configuration after N steps; with one token per step the total
// step count is known (gen_length), so seconds and tokens/s are extrapolated from the
// mean step time ("extrapolated": true) — make N a multiple of the block length so block
// starts weigh in as they do in a full run.
#include "bench_decode.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include <omp.h>

#include <nlohmann/json.hpp>

#include "unmask/batch_decode.h"
#include "unmask/chat_template.h"
#include "unmask/decode.h"
#include "unmask/error.h"
#include "unmask/tokenizer.h"

namespace unmask::cli {

namespace {

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    out.push_back(list.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

struct Outcome {
  std::vector<std::vector<int32_t>> canvases;  // per canvas, when complete
  bool complete = false;
  int steps = 0;
  int64_t committed = 0;  // slots committed over all canvases
  double seconds = 0, cpu_seconds = 0;
  double full_ms = 0, partial_ms = 0;  // summed step times by kind
  int full_steps = 0;
  double rows = 0, weight_bytes = 0;  // summed over steps
};

Outcome run_config(const Model& model, const std::vector<std::vector<int32_t>>& prompts, const BlockDecoderOptions& o,
                   int max_steps, const std::string& label) {
  Outcome r;
  std::vector<std::unique_ptr<DecodeJob>> jobs;
  std::vector<DecodeJob*> ptrs;
  for (const auto& p : prompts) {
    auto j = std::make_unique<DecodeJob>();
    j->prompt = p;
    j->options = o;
    j->on_step = [&r](const StepEvent& e) { r.committed += int64_t(e.committed.size()); };
    ptrs.push_back(j.get());
    jobs.push_back(std::move(j));
  }
  int full_rows = 0;
  for (const auto& p : prompts) full_rows += int(p.size()) + o.gen_length;
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = process_cpu_seconds();
  auto last_report = t0;
  int left = int(ptrs.size());
  while (left > 0 && (max_steps <= 0 || r.steps < max_steps)) {
    BatchStepStats st;
    left = batch_decode_step(model, ptrs, &st);
    if (st.jobs == 0) continue;  // the step only retired finished jobs
    ++r.steps;
    const bool full = st.query_rows == full_rows;
    (full ? r.full_ms : r.partial_ms) += st.seconds * 1e3;
    r.full_steps += full;
    r.rows += st.query_rows;
    r.weight_bytes += st.weight_bytes;
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_report).count() > 2.0) {
      std::fprintf(stderr, "bench: %s: step %d, %lld slots committed, %.0f ms last step\n", label.c_str(), r.steps,
                   static_cast<long long>(r.committed), st.seconds * 1e3);
      last_report = now;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_seconds = process_cpu_seconds() - c0;
  for (DecodeJob* j : ptrs)
    if (j->done && j->finish == FinishReason::kError) throw Error("bench: " + j->error);
  r.complete = left == 0;
  if (r.complete)
    for (DecodeJob* j : ptrs) r.canvases.push_back(j->result.canvas);
  return r;
}

std::vector<std::vector<int32_t>> make_prompts(const DecodeBenchArgs& a, const Model& model,
                                               const std::string& model_dir, int batch) {
  const ModelConfig& c = model.config;
  std::vector<int32_t> text_ids;
  if (!a.prompt.empty()) {
    if (model_dir.empty()) throw Error("bench: --prompt needs -m DIR (a model with a tokenizer)");
    const Tokenizer tok = Tokenizer::from_dir(model_dir);
    text_ids = apply_chat_template(tok, {{"user", a.prompt}}).ids;
  }
  std::vector<std::vector<int32_t>> prompts;
  for (int b = 0; b < batch; ++b) {
    if (!text_ids.empty()) {
      prompts.push_back(text_ids);
      continue;
    }
    // Random ids, a different prompt per canvas, never the mask id.
    std::mt19937 gen(uint32_t(100 + b));
    std::vector<int32_t> p(static_cast<size_t>(a.prompt_len));
    for (int32_t& t : p) {
      t = int32_t(gen() % uint32_t(c.vocab));
      if (t == c.special.mask) t = 0;
    }
    prompts.push_back(std::move(p));
  }
  return prompts;
}

void emit(const DecodeBenchArgs& a, const Model& model, const std::string& cache, int batch, const Outcome& r,
          const std::optional<bool>& matches, bool* header_done) {
  const bool one_per_step = !a.threshold;
  const bool extrapolated = !r.complete && one_per_step && r.steps > 0;
  const double ms_per_forward = r.steps > 0 ? (r.full_ms + r.partial_ms) / r.steps : 0;
  // One token per step: gen_length steps in all; else only what ran is known.
  const double total_steps = extrapolated ? double(a.gen_length) : double(r.steps);
  const double seconds = extrapolated ? r.seconds / r.steps * total_steps : r.seconds;
  const double tokens = extrapolated || r.complete ? double(batch) * a.gen_length : double(r.committed);
  const double tokens_per_s = seconds > 0 ? tokens / seconds : 0;
  const double nfe_per_token = tokens > 0 ? total_steps / (tokens / batch) : 0;
  const double rows_per_forward = r.steps > 0 ? r.rows / r.steps : 0;
  const double bytes_per_step = r.steps > 0 ? r.weight_bytes / r.steps : 0;
  const double full_ms = r.full_steps > 0 ? r.full_ms / r.full_steps : 0;
  const double partial_ms = r.steps > r.full_steps ? r.partial_ms / (r.steps - r.full_steps) : 0;
  const int threads = omp_get_max_threads();
  const double cpu_util = r.seconds > 0 ? r.cpu_seconds / (r.seconds * threads) : 0;
  if (a.json) {
    nlohmann::json j = {{"what", "decode"},
                        {"cache", cache},
                        {"batch", batch},
                        {"prompt_len", a.prompt.empty() ? a.prompt_len : -1},
                        {"gen_length", a.gen_length},
                        {"block_length", a.block_length},
                        {"threshold", a.threshold ? nlohmann::json(*a.threshold) : nlohmann::json(nullptr)},
                        {"dtype", dtype_name(model.weight_dtype)},
                        {"threads", threads},
                        {"steps", r.steps},
                        {"complete", r.complete},
                        {"extrapolated", extrapolated},
                        {"seconds", seconds},
                        {"ms_per_forward", ms_per_forward},
                        {"ms_full_forward", full_ms},
                        {"ms_partial_forward", partial_ms},
                        {"gen_tokens_per_s", tokens_per_s},
                        {"nfe_per_token", nfe_per_token},
                        {"query_tokens_per_forward", rows_per_forward},
                        {"weight_bytes_per_step", bytes_per_step},
                        {"cpu_util", cpu_util},
                        {"matches_no_cache", matches ? nlohmann::json(*matches) : nlohmann::json(nullptr)}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    return;
  }
  if (!*header_done) {
    std::printf("%-7s %5s %6s %10s %10s %10s %9s %8s %8s %10s %5s %6s\n", "cache", "batch", "steps", "ms/fwd",
                "full ms", "part ms", "tok/s", "nfe/tok", "rows/fwd", "W MB/step", "cpu%", "match");
    *header_done = true;
  }
  const std::string match = matches ? (*matches ? "yes" : "no") : "-";
  std::printf("%-7s %5d %5d%s %10.1f %10.1f %10.1f %9.2f %8.3f %8.1f %10.1f %5.0f %6s\n", cache.c_str(), batch,
              r.steps, extrapolated ? "*" : " ", ms_per_forward, full_ms, partial_ms, tokens_per_s, nfe_per_token,
              rows_per_forward, bytes_per_step * 1e-6, 100 * cpu_util, match.c_str());
  std::fflush(stdout);
}

}  // namespace

void run_decode_bench(const DecodeBenchArgs& a, const Model& model, const std::string& model_dir) {
  const ModelConfig& c = model.config;
  check(a.prompt_len > 0 && a.gen_length > 0 && a.block_length > 0,
        "bench: --prompt-len, --gen-length and --block-length must be positive");
  check(c.special.mask >= 0, "bench: the model declares no mask token");
  std::vector<BlockCache> caches;
  std::vector<std::string> cache_names = split_list(a.caches);
  for (const std::string& name : cache_names) {
    BlockCache p;
    if (!parse_block_cache(name, &p)) throw Error("--cache: unknown policy '" + name + "' (none, prefix, dual, window)");
    caches.push_back(p);
  }
  // With a prompt the outputs are compared with the no-cache run: make sure there is one, first.
  if (!a.prompt.empty() && caches.front() != BlockCache::kNone) {
    caches.insert(caches.begin(), BlockCache::kNone);
    cache_names.insert(cache_names.begin(), "none");
  }
  std::vector<int> batches;
  for (const std::string& b : split_list(a.batches)) {
    int v = 0;
    try {
      v = std::stoi(b);
    } catch (const std::exception&) {
      v = 0;
    }
    if (v <= 0) throw Error("--batch: '" + b + "' is not a positive integer");
    batches.push_back(v);
  }
  BlockDecoderOptions o;
  o.gen_length = a.gen_length;
  o.block_length = a.block_length;
  o.mask_id = c.special.mask;
  o.refresh_window = a.refresh_window;
  if (a.threshold) {
    o.commit = BlockCommit::kThreshold;
    o.threshold = *a.threshold;
  } else {
    o.commit = BlockCommit::kTopN;  // steps 0: one slot per step
  }
  bool header = false;
  for (int batch : batches) {
    const std::vector<std::vector<int32_t>> prompts = make_prompts(a, model, model_dir, batch);
    std::optional<std::vector<std::vector<int32_t>>> reference;  // the complete no-cache canvases
    for (size_t i = 0; i < caches.size(); ++i) {
      o.cache = caches[i];
      const std::string label = cache_names[i] + " batch " + std::to_string(batch);
      std::fprintf(stderr, "bench: %s: decoding %d x [%zu prompt | %d]\n", label.c_str(), batch, prompts[0].size(),
                   a.gen_length);
      const Outcome r = run_config(model, prompts, o, a.max_steps, label);
      if (caches[i] == BlockCache::kNone && r.complete) reference = r.canvases;
      std::optional<bool> matches;
      if (reference && r.complete) matches = r.canvases == *reference;
      emit(a, model, cache_names[i], batch, r, matches, &header);
    }
  }
  if (!a.json && a.max_steps > 0 && !a.threshold)
    std::printf("* stopped after %d steps: seconds and tok/s extrapolated to %d steps from the mean step time\n",
                a.max_steps, a.gen_length);
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

}  // namespace unmask::cli
