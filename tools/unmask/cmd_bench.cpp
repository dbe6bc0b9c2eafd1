// `unmask bench`: times whole forwards (or single matmuls with --gemm) and prints the
// achieved FLOP rate next to the machine's peak, measured by the same process just
// before (ops/cpu/peak.h). Table on stdout, or one JSON object per configuration with
// --json; progress on stderr.
//
// A forward over n query tokens is one sequence of n rows (full bidirectional
// attention), positions 0..n-1, and computes logits for the last `--logit-rows` rows
// (default: all n, the cost of a step that queries every slot).
//
// With --prompt-len / --gen-length / --block-length / --cache / --threshold / --batch /
// --max-steps / --prompt / --prompts-file it times whole generations instead (bench_decode.cpp).
#include <omp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "load_progress.h"
#include "bench_decode.h"
#include "commands.h"
#include "models/random_model.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/peak.h"
#include "ops/cpu/qmatmul.h"
#include "unmask/error.h"
#include "unmask/model.h"
#include "unmask/quant.h"

namespace unmask::cli {

namespace {

struct BenchArgs {
  std::string random_spec, model_dir, weights, dtype, tokens = "64,256", gemm;
  int threads = 0, repeat = 3, logit_rows = 0;
  bool json = false, gemm_mode = false, decode_mode = false;
  DecodeBenchArgs decode;
};

using Clock = std::chrono::steady_clock;

std::vector<int64_t> parse_counts(const std::string& list, const char* what) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const std::string item = list.substr(pos, comma - pos);
    size_t used = 0;
    long v = 0;
    try {
      v = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v <= 0)
      throw Error(std::string(what) + ": '" + item + "' is not a positive integer");
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}

// "2048x2048,5632x2048": [out, k] weight shapes.
std::vector<std::pair<int64_t, int64_t>> parse_shapes(const std::string& list) {
  std::vector<std::pair<int64_t, int64_t>> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const std::string item = list.substr(pos, comma - pos);
    const size_t x = item.find('x');
    if (x == std::string::npos) throw Error("--gemm: shape '" + item + "' is not OUTxK");
    const auto dims = parse_counts(item.substr(0, x) + "," + item.substr(x + 1), "--gemm");
    out.push_back({dims[0], dims[1]});
    pos = comma + 1;
  }
  return out;
}

DType parse_dtype(const std::string& s) {
  if (s == "f32") return DType::F32;
  if (s == "bf16") return DType::BF16;
  // GGUF weight types (--gemm only; a .gguf model brings its own): ops/cpu/qmatmul.h.
  static const std::pair<const char*, DType> kGguf[] = {
      {"f16", DType::F16}, {"q8_0", DType::Q8_0}, {"q4_0", DType::Q4_0}, {"q4_k", DType::Q4_K}, {"q6_k", DType::Q6_K}};
  for (const auto& [name, t] : kGguf)
    if (s == name) return t;
  throw Error("--dtype must be f32, bf16, f16, q8_0, q4_0, q4_k or q6_k, got '" + s + "'");
}

std::string dtype_label(DType t) {
  std::string s(dtype_name(t));
  for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Wall and process CPU seconds (all threads) of each timed run: one warm-up, then
// `repeat` timed calls. CPU time well below threads x wall means the threads were
// descheduled (a busy machine), and the wall-clock figures understate the kernels.
struct Timings {
  std::vector<double> wall, cpu;
};
template <typename Fn>
Timings time_runs(int repeat, const std::string& label, Fn&& fn) {
  std::fprintf(stderr, "bench: %s: warm-up\n", label.c_str());
  fn();
  Timings t;
  for (int i = 0; i < repeat; ++i) {
    const auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    fn();
    t.cpu.push_back(process_cpu_seconds() - c0);
    t.wall.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    std::fprintf(stderr, "bench: %s: run %d/%d %.1f ms\n", label.c_str(), i + 1, repeat, t.wall.back() * 1e3);
  }
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// What the path multiplies with: VDPBF16PS for bf16 weights on AVX-512 BF16 CPUs,
// VPDPBUSD (AVX2: VPMADDUBSW) for the block types on the int8 path (ops::int8_path), FMA
// otherwise (f32 and f16 weights, bf16 widened to f32 on AVX2, block types decoded to f32).
struct PeakRef {
  double gflops;
  const char* instruction;
};
PeakRef peak_for(const ops::PeakFigures& p, DType dtype) {
  if (dtype == DType::BF16 && ops::best_isa() == ops::Isa::kAvx512 && p.bf16_dot_gflops > 0)
    return {p.bf16_dot_gflops, "vdpbf16ps"};
  if (ops::int8_path(ops::best_isa(), dtype) && p.int8_dot_gops > 0)
    return {p.int8_dot_gops, ops::best_isa() == ops::Isa::kAvx512 ? "vpdpbusd" : "vpmaddubsw"};
  return {p.fma_f32_gflops, "fma_f32"};
}

struct Row {
  std::string what;  // "forward" / "gemm OUTxK"
  int64_t tokens = 0, logit_rows = 0;
  double ms_median = 0, ms_min = 0, cpu_ms_median = 0, gflop = 0, weight_bytes = 0;
  // MoE forwards: expert weight bytes read, the minimum for the routing chosen (each distinct
  // routed expert once per layer, counted from the router's choices), a token-by-token loop's.
  double expert_bytes = 0, expert_min_bytes = 0, expert_token_loop_bytes = 0;
  void set_times(const Timings& t) {
    ms_median = median(t.wall) * 1e3;
    ms_min = *std::min_element(t.wall.begin(), t.wall.end()) * 1e3;
    cpu_ms_median = median(t.cpu) * 1e3;
  }
};

void emit(const Row& r, const BenchArgs& a, DType dtype, const ops::PeakFigures& peaks, bool* header_done) {
  const PeakRef ref = peak_for(peaks, dtype);
  const double s = r.ms_median * 1e-3;
  const double rate = r.gflop / s;
  // The rate had every thread run for the whole call: CPU seconds / threads in place of
  // wall seconds. Compare with the peaks, which are timed the same way (peak.h).
  const double rate_cpu = r.gflop * peaks.threads / (r.cpu_ms_median * 1e-3);
  if (a.json) {
    nlohmann::json j = {{"what", r.what},
                        {"query_tokens", r.tokens},
                        {"threads", peaks.threads},
                        {"dtype", dtype_label(dtype)},
                        {"isa", ops::isa_name(ops::best_isa())},
                        {"repeat", a.repeat},
                        {"ms_per_forward", r.ms_median},
                        {"ms_min", r.ms_min},
                        {"cpu_ms_per_forward", r.cpu_ms_median},
                        {"query_tokens_per_s", double(r.tokens) / s},
                        {"gflops", r.gflop},
                        {"gflops_per_s", rate},
                        {"peak_instruction", ref.instruction},
                        {"peak_gflops", ref.gflops},
                        {"peak_fraction", rate / ref.gflops},
                        {"gflops_per_cpu_s", rate_cpu},
                        {"peak_fraction_cpu", rate_cpu / ref.gflops},
                        {"weight_gb_per_s", r.weight_bytes / s * 1e-9},
                        {"copy_peak_gb_per_s", peaks.copy_gbps}};
    if (r.what == "forward") j["logit_rows"] = r.logit_rows;
    if (r.expert_bytes > 0) {
      j["expert_bytes"] = r.expert_bytes;
      j["expert_min_bytes"] = r.expert_min_bytes;
      j["expert_token_loop_bytes"] = r.expert_token_loop_bytes;
    }
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    return;
  }
  if (!*header_done) {
    std::printf("%-18s %6s %6s %4s %5s %10s %9s %9s %9s %7s %7s %7s %5s\n", "what", "tokens", "logits", "thr", "dtype",
                "ms (med)", "tok/s", "GFLOP", "GFLOP/s", "%peak", "%pk cpu", "W GB/s", "cpu%");
    *header_done = true;
  }
  const std::string logits = r.what == "forward" ? std::to_string(r.logit_rows) : "-";
  std::printf("%-18s %6lld %6s %4d %5s %10.2f %9.1f %9.2f %9.1f %6.1f%% %6.1f%% %7.1f %5.0f\n", r.what.c_str(),
              static_cast<long long>(r.tokens), logits.c_str(), peaks.threads,
              dtype_label(dtype).c_str(), r.ms_median, double(r.tokens) / s, r.gflop, rate,
              100.0 * rate / ref.gflops, 100.0 * rate_cpu / ref.gflops, r.weight_bytes / s * 1e-9,
              100.0 * r.cpu_ms_median / (r.ms_median * peaks.threads));
  if (r.expert_bytes > 0)
    std::printf("%-18s expert weights read %.2f MB = %.3fx the minimum %.2f MB (a token loop: %.2f MB)\n", "",
                r.expert_bytes * 1e-6, r.expert_bytes / r.expert_min_bytes, r.expert_min_bytes * 1e-6,
                r.expert_token_loop_bytes * 1e-6);
  std::fflush(stdout);
}

void print_peaks(const ops::PeakFigures& p, bool json) {
  if (json) {
    nlohmann::json j = {{"what", "peaks"},           {"threads", p.threads},
                        {"isa", p.isa},              {"fma_f32_gflops", p.fma_f32_gflops},
                        {"bf16_dot_gflops", p.bf16_dot_gflops}, {"int8_dot_gops", p.int8_dot_gops},
                        {"copy_gb_per_s", p.copy_gbps}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("measured peaks, %d thread(s), %s: f32 FMA %.1f GFLOP/s, VDPBF16PS %.1f GFLOP/s, "
              "VPDPBUSD %.1f Gop/s, copy %.1f GB/s\n",
              p.threads, p.isa.c_str(), p.fma_f32_gflops, p.bf16_dot_gflops, p.int8_dot_gops, p.copy_gbps);
}

void run_gemm(const BenchArgs& a, const std::vector<int64_t>& counts, const ops::PeakFigures& peaks) {
  const std::string shapes_text = a.gemm.empty() ? "2048x2048,5632x2048,2048x5632,32768x2048" : a.gemm;
  const DType dtype = a.dtype.empty() ? DType::F32 : parse_dtype(a.dtype);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  bool header = false;
  for (const auto& [out, k] : parse_shapes(shapes_text)) {
    // Random weights, offset by 2 bytes like an unaligned tensor in a safetensors file.
    std::vector<uint8_t> bytes(dtype_row_bytes(dtype, out * k) + 2);
    if (dtype != DType::F32 && dtype != DType::BF16) {  // GGUF types: quantized row by row
      std::vector<float> row(static_cast<size_t>(k));
      for (int64_t r = 0; r < out; ++r) {
        for (float& v : row) v = normal(rng) / std::sqrt(float(k));
        quant::quantize_row(dtype, row.data(), bytes.data() + 2 + size_t(r) * dtype_row_bytes(dtype, k), k);
      }
    } else {
      for (int64_t i = 0; i < out * k; ++i) {
        const float v = normal(rng) / std::sqrt(float(k));
        if (dtype == DType::BF16) {
          const uint16_t h = f32_to_bf16(v);
          std::memcpy(bytes.data() + 2 + size_t(i) * 2, &h, 2);
        } else {
          std::memcpy(bytes.data() + 2 + size_t(i) * 4, &v, 4);
        }
      }
    }
    TensorView w;
    w.data = bytes.data() + 2;
    w.dtype = dtype;
    w.ndim = 2;
    w.shape = {out, k, 0, 0};
    for (int64_t n : counts) {
      std::vector<float> x(size_t(n * k)), y(size_t(n * out));
      for (float& v : x) v = normal(rng);
      const std::string label = "gemm " + std::to_string(out) + "x" + std::to_string(k) + " n=" + std::to_string(n);
      const Timings t = time_runs(a.repeat, label, [&] { ops::matmul(x.data(), n, w, nullptr, y.data()); });
      Row r;
      r.what = "gemm " + std::to_string(out) + "x" + std::to_string(k);
      r.tokens = n;
      r.set_times(t);
      r.gflop = 2.0 * double(n) * double(k) * double(out) * 1e-9;
      r.weight_bytes = double(w.nbytes());
      emit(r, a, dtype, peaks, &header);
    }
  }
}

std::unique_ptr<Model> build_model(const BenchArgs& a) {
  std::unique_ptr<Model> model;
  if (!a.random_spec.empty()) {
    RandomModelSpec spec = parse_random_model_spec(a.random_spec);
    if (!a.dtype.empty()) spec.dtype = parse_dtype(a.dtype);
    std::fprintf(stderr, "bench: building random model %s\n", a.random_spec.c_str());
    model = make_random_model(spec);
  } else {
    model = load_model_warm(a.model_dir, LoadOptions{.weights_file = a.weights});
    if (!a.dtype.empty() && parse_dtype(a.dtype) != model->weight_dtype)
      throw Error("--dtype " + a.dtype + " does not match the weights of " + a.model_dir + " (" +
                  std::string(dtype_name(model->weight_dtype)) + "); choose the weights file with --weights");
  }
  return model;
}

// Fewest expert weight bytes a forward with this routing can read: every distinct expert
// chosen in a MoE layer, once. router_topk holds the MoE layers in ascending order.
double min_expert_bytes(const Model& model, const std::vector<std::vector<int32_t>>& router_topk) {
  double bytes = 0;
  size_t moe_layer = 0;
  for (const LayerWeights& L : model.weights.layers) {
    if (L.experts.empty() || moe_layer >= router_topk.size()) continue;
    const std::set<int32_t> distinct(router_topk[moe_layer].begin(), router_topk[moe_layer].end());
    const LayerWeights::Expert& e = L.experts.front();
    bytes += double(distinct.size()) * double(e.w_gate.nbytes() + e.w_up.nbytes() + e.w_down.nbytes());
    ++moe_layer;
  }
  return bytes;
}

void run_forwards(const BenchArgs& a, const std::vector<int64_t>& counts, const Model* model,
                  const ops::PeakFigures& peaks) {
  const ModelConfig& c = model->config;
  std::fprintf(stderr, "bench: %s, %lld parameters, hidden %d, %d layers, ffn %d, vocab %d, %s\n", c.family.c_str(),
               static_cast<long long>(parameter_count(*model)), c.hidden, c.n_layers, c.ffn, c.vocab,
               std::string(dtype_name(model->weight_dtype)).c_str());
  std::mt19937 rng(7);
  bool header = false;
  for (int64_t n : counts) {
    ForwardBatch batch;
    const int64_t logits = a.logit_rows > 0 ? std::min<int64_t>(a.logit_rows, n) : n;
    for (int64_t i = 0; i < n; ++i) {
      batch.tokens.push_back(int32_t(rng() % uint32_t(c.vocab)));
      batch.positions.push_back(int32_t(i));
      if (i >= n - logits) batch.logit_rows.push_back(int32_t(i));
    }
    ForwardOutput out;
    const Timings t = time_runs(a.repeat, "forward n=" + std::to_string(n), [&] { forward(*model, batch, &out); });
    Row r;
    r.what = "forward";
    r.tokens = n;
    r.logit_rows = logits;
    r.set_times(t);
    r.gflop = out.flops * 1e-9;
    r.weight_bytes = out.weight_bytes;
    r.expert_bytes = out.expert_bytes;
    r.expert_min_bytes = min_expert_bytes(*model, out.router_topk);
    r.expert_token_loop_bytes = out.expert_bytes_token_loop;
    emit(r, a, model->weight_dtype, peaks, &header);
  }
}

void run_bench(const BenchArgs& a) {
  if (!a.gemm_mode && a.random_spec.empty() == a.model_dir.empty())
    throw Error("bench: give exactly one of --random SPEC, -m DIR or --gemm");
  check(a.repeat > 0, "--repeat must be positive");
  if (a.threads > 0) omp_set_num_threads(a.threads);
  if (a.decode_mode) {
    check(!a.gemm_mode, "bench: --gemm times matmuls; the decoding flags need --random SPEC or -m DIR");
    const std::unique_ptr<Model> model = build_model(a);
    DecodeBenchArgs d = a.decode;
    d.json = a.json;
    run_decode_bench(d, *model, a.random_spec.empty() ? a.model_dir : "");
    return;
  }
  const std::vector<int64_t> counts = parse_counts(a.tokens, "--tokens");
  if (!a.dtype.empty()) parse_dtype(a.dtype);  // reject a bad value before the slow parts
  const std::unique_ptr<Model> model = a.gemm_mode ? nullptr : build_model(a);
  const int threads = omp_get_max_threads();
  std::fprintf(stderr, "bench: measuring peaks on %d thread(s)\n", threads);
  const ops::PeakFigures peaks = ops::measure_peaks(threads);
  print_peaks(peaks, a.json);
  if (a.gemm_mode)
    run_gemm(a, counts, peaks);
  else
    run_forwards(a, counts, model.get(), peaks);
}

}  // namespace

void register_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Time forwards (or matmuls) and compare with the measured machine peak");
  cmd->add_option("--random", a->random_spec,
                  "Random model FAMILY:key=value,..., e.g. "
                  "llada:hidden=2048,layers=16,heads=16,ffn=5632,vocab=32768[,kv_heads=N,dtype=bf16]");
  cmd->add_option("-m,--model", a->model_dir, "Model folder");
  cmd->add_option("--weights", a->weights, "Weights file inside the model folder (default: the folder's)");
  auto* gemm = cmd->add_option("--gemm", a->gemm,
                               "Time single matmuls of OUTxK weight shapes instead of forwards "
                               "(default: the ~1B LLaDA set 2048x2048,5632x2048,2048x5632,32768x2048)")
                   ->expected(0, 1);
  cmd->add_option("--tokens", a->tokens, "Query-token (row) counts, comma-separated")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Worker threads (default: OpenMP's)");
  add_device_option(cmd);
  cmd->add_option("--dtype", a->dtype, "Weight dtype f32|bf16, or f16|q8_0|q4_0|q4_k|q6_k (random model / gemm; must match -m weights)");
  cmd->add_option("--repeat", a->repeat, "Timed runs per configuration, after one warm-up")->capture_default_str();
  cmd->add_option("--logit-rows", a->logit_rows, "Rows that get logits (the last N; default all)");
  cmd->add_flag("--json", a->json, "One JSON object per configuration instead of a table");
  const std::vector<CLI::Option*> decode_flags = {
      cmd->add_option("--prompt-len", a->decode.prompt_len, "Decoding bench: random prompt tokens per canvas (512)"),
      cmd->add_option("--gen-length", a->decode.gen_length, "Decoding bench: generated slots per canvas (256)"),
      cmd->add_option("--block-length", a->decode.block_length, "Decoding bench: block length (32)"),
      cmd->add_option("--cache", a->decode.caches,
                      "Decoding bench: configurations POLICY[:w=W][:every=R], e.g. none,dual,dual:every=8,delayed:w=2"),
      cmd->add_option("--threshold", a->decode.threshold,
                      "Decoding bench: threshold commit rule (default: one token per step)"),
      cmd->add_option("--refresh-window", a->decode.refresh_window, "Decoding bench: window policy's W (16)"),
      cmd->add_option("--batch", a->decode.batches, "Decoding bench: canvases decoded together, e.g. 1,2,4,8"),
      cmd->add_option("--max-steps", a->decode.max_steps,
                      "Decoding bench: stop each configuration after N steps (extrapolates one-token-per-step runs)"),
      cmd->add_option("--prompt", a->decode.prompt,
                      "Decoding bench with -m: decode this text; outputs are compared with the no-cache run"),
      cmd->add_option("--prompts-file", a->decode.prompts_file,
                      "Decoding bench with -m: one JSON string per line, every configuration per prompt")};
  cmd->callback([a, gemm, decode_flags] {
    a->gemm_mode = gemm->count() > 0;
    for (const CLI::Option* o : decode_flags) a->decode_mode = a->decode_mode || o->count() > 0;
    run_bench(*a);
  });
}

}  // namespace unmask::cli
