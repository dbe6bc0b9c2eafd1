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
//   agree_no_cache           fraction of generated slots equal to the no-cache run's
// A configuration is POLICY[:w=W][:every=R] (refresh_window, refresh_every). With
// --prompts-file (one JSON string per line) each prompt runs every configuration, the
// no-cache one first, before the next prompt; rows carry its `prompt_index`.
// --max-steps N stops a configuration after N steps; with one token per step the total
// step count is known (gen_length), so seconds and tokens/s are extrapolated from the
// mean step time ("extrapolated": true) — make N a multiple of the block length so block
// starts weigh in as they do in a full run.
#include "bench_decode.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
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

std::vector<std::string> split_list(const std::string& list, char separator = ',') {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(separator, pos), list.size());
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
  int64_t prompt_tokens = 0;          // per canvas
};

Outcome run_config(const Model& model, const std::vector<std::vector<int32_t>>& prompts, const BlockDecoderOptions& o,
                   int max_steps, const std::string& label) {
  Outcome r;
  std::atomic<int64_t> committed{0};  // on_step runs on any decode thread; copied into r.committed
  std::vector<std::unique_ptr<DecodeJob>> jobs;
  std::vector<DecodeJob*> ptrs;
  for (const auto& p : prompts) {
    auto j = std::make_unique<DecodeJob>();
    j->prompt = p;
    j->options = o;
    j->on_step = [&committed](const StepEvent& e) { committed += int64_t(e.committed.size()); };
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
                   static_cast<long long>(committed.load()), st.seconds * 1e3);
      last_report = now;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_seconds = process_cpu_seconds() - c0;
  r.committed = committed.load();
  for (DecodeJob* j : ptrs)
    if (j->done && j->finish == FinishReason::kError) throw Error("bench: " + j->error);
  r.complete = left == 0;
  if (r.complete)
    for (DecodeJob* j : ptrs) r.canvases.push_back(j->result.canvas);
  return r;
}

// `batch` canvases: the tokens of `text` (through the chat template) when given, else
// random ids, a different prompt per canvas, never the mask id.
std::vector<std::vector<int32_t>> make_prompts(const std::string& text, const DecodeBenchArgs& a, const Model& model,
                                               const Tokenizer* tok, int batch) {
  const ModelConfig& c = model.config;
  std::vector<std::vector<int32_t>> prompts;
  if (!text.empty()) {
    if (!tok) throw Error("bench: --prompt / --prompts-file need -m DIR (a model with a tokenizer)");
    prompts.assign(size_t(batch), apply_chat_template(*tok, {{"user", text}}).ids);
    return prompts;
  }
  for (int b = 0; b < batch; ++b) {
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

struct BenchConfig {
  std::string label;  // as given on --cache
  std::string policy;
  BlockDecoderOptions options;
};

int parse_positive_or_zero(const std::string& value, const std::string& what) {
  int v = -1;
  try {
    size_t used = 0;
    v = std::stoi(value, &used);
    if (used != value.size()) v = -1;
  } catch (const std::exception&) {
    v = -1;
  }
  if (v < 0) throw Error("--cache: " + what + " '" + value + "' is not an integer >= 0");
  return v;
}

// "POLICY[:w=W][:every=R]" -> a configuration based on `base`.
BenchConfig parse_config(const std::string& spec, const BlockDecoderOptions& base) {
  BenchConfig cfg{spec, "", base};
  const std::vector<std::string> parts = split_list(spec, ':');
  cfg.policy = parts[0];
  if (!parse_block_cache(cfg.policy, &cfg.options.cache))
    throw Error("--cache: unknown policy '" + cfg.policy + "' (none, prefix, dual, window, delayed)");
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].rfind("w=", 0) == 0)
      cfg.options.refresh_window = parse_positive_or_zero(parts[i].substr(2), "w");
    else if (parts[i].rfind("every=", 0) == 0)
      cfg.options.refresh_every = parse_positive_or_zero(parts[i].substr(6), "every");
    else
      throw Error("--cache: '" + parts[i] + "' in '" + spec + "' is not w=N or every=N");
  }
  return cfg;
}

// Prompts of --prompts-file: one JSON string per line (blank lines skipped).
std::vector<std::string> read_prompts_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("--prompts-file: cannot open " + path);
  std::vector<std::string> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_string() || j.get<std::string>().empty())
      throw Error("--prompts-file: " + path + " line " + std::to_string(n) + " is not a non-empty JSON string");
    out.push_back(j.get<std::string>());
  }
  if (out.empty()) throw Error("--prompts-file: " + path + " holds no prompt");
  return out;
}

// How a configuration's canvases compare with the no-cache run's on the same prompts.
struct Comparison {
  int prompt_index = -1;          // -1 without --prompts-file
  std::optional<bool> matches;    // every canvas equal
  std::optional<double> agree;    // fraction of generated slots equal
};

Comparison compare(const Outcome& r, const std::optional<std::vector<std::vector<int32_t>>>& reference,
                   const std::vector<std::vector<int32_t>>& prompts, int prompt_index) {
  Comparison c;
  c.prompt_index = prompt_index;
  if (!reference || !r.complete) return c;
  c.matches = r.canvases == *reference;
  int64_t same = 0, total = 0;
  for (size_t b = 0; b < prompts.size(); ++b)
    for (size_t s = prompts[b].size(); s < r.canvases[b].size(); ++s, ++total)
      same += r.canvases[b][s] == (*reference)[b][s];
  c.agree = total > 0 ? double(same) / double(total) : 1.0;
  return c;
}

void emit(const DecodeBenchArgs& a, const Model& model, const BenchConfig& cfg, int batch, const Outcome& r,
          const Comparison& cmp, bool* header_done) {
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
                        {"cache", cfg.policy},
                        {"config", cfg.label},
                        {"refresh_window", cfg.options.refresh_window},
                        {"refresh_every", cfg.options.refresh_every},
                        {"prompt_index", cmp.prompt_index},
                        {"batch", batch},
                        {"prompt_len", int(r.prompt_tokens)},
                        {"gen_length", a.gen_length},
                        {"block_length", a.block_length},
                        {"threshold", a.threshold ? nlohmann::json(*a.threshold) : nlohmann::json(nullptr)},
                        {"dtype", dtype_name(model.weight_dtype)},
                        {"threads", threads},
                        {"steps", r.steps},
                        {"complete", r.complete},
                        {"extrapolated", extrapolated},
                        {"seconds", seconds},
                        {"cpu_seconds", r.cpu_seconds},
                        {"ms_per_forward", ms_per_forward},
                        {"ms_full_forward", full_ms},
                        {"ms_partial_forward", partial_ms},
                        {"gen_tokens_per_s", tokens_per_s},
                        {"nfe_per_token", nfe_per_token},
                        {"query_tokens_per_forward", rows_per_forward},
                        {"weight_bytes_per_step", bytes_per_step},
                        {"cpu_util", cpu_util},
                        {"matches_no_cache", cmp.matches ? nlohmann::json(*cmp.matches) : nlohmann::json(nullptr)},
                        {"agree_no_cache", cmp.agree ? nlohmann::json(*cmp.agree) : nlohmann::json(nullptr)}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    return;
  }
  if (!*header_done) {
    std::printf("%-22s %5s %6s %10s %10s %10s %9s %8s %8s %10s %5s %6s\n", "cache", "batch", "steps", "ms/fwd",
                "full ms", "part ms", "tok/s", "nfe/tok", "rows/fwd", "W MB/step", "cpu%", "match");
    *header_done = true;
  }
  const std::string match = cmp.matches ? (*cmp.matches ? "yes" : "no") : "-";
  std::printf("%-22s %5d %5d%s %10.1f %10.1f %10.1f %9.2f %8.3f %8.1f %10.1f %5.0f %6s\n", cfg.label.c_str(), batch,
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
  check(a.prompt.empty() || a.prompts_file.empty(), "bench: give --prompt or --prompts-file, not both");
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
  std::vector<BenchConfig> configs;
  for (const std::string& spec : split_list(a.caches)) configs.push_back(parse_config(spec, o));
  const std::vector<std::string> texts =
      !a.prompts_file.empty() ? read_prompts_file(a.prompts_file) : std::vector<std::string>{a.prompt};
  // With a prompt the outputs are compared with the no-cache run: make sure there is one, first.
  if (!texts.front().empty() && configs.front().options.cache != BlockCache::kNone)
    configs.insert(configs.begin(), parse_config("none", o));
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
  std::optional<Tokenizer> tok;
  if (!texts.front().empty() && !model_dir.empty()) tok = Tokenizer::from_dir(model_dir);
  bool header = false;
  for (int batch : batches) {
    for (size_t t = 0; t < texts.size(); ++t) {
      const std::vector<std::vector<int32_t>> prompts = make_prompts(texts[t], a, model, tok ? &*tok : nullptr, batch);
      std::optional<std::vector<std::vector<int32_t>>> reference;  // the complete no-cache canvases
      for (const BenchConfig& cfg : configs) {
        const std::string label = cfg.label + " batch " + std::to_string(batch);
        std::fprintf(stderr, "bench: %s: decoding %d x [%zu prompt | %d]\n", label.c_str(), batch, prompts[0].size(),
                     a.gen_length);
        Outcome r = run_config(model, prompts, cfg.options, a.max_steps, label);
        r.prompt_tokens = int64_t(prompts[0].size());
        if (cfg.options.cache == BlockCache::kNone && r.complete) reference = r.canvases;
        const Comparison cmp = compare(r, reference, prompts, a.prompts_file.empty() ? -1 : int(t));
        emit(a, model, cfg, batch, r, cmp, &header);
      }
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
