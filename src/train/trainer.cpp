// train/trainer.cpp — the training loop: data, steps, AdamW, logging, evaluation,
// checkpoints and resume (run_training in unmask/train.h).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "train/checkpoint.h"
#include "train/data.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "unmask/error.h"
#include "unmask/eval.h"
#include "unmask/tokenizer.h"
#include "unmask/train.h"

namespace unmask {

const char* time_sampling_name(TimeSampling s) { return s == TimeSampling::kBell ? "bell" : "uniform"; }

TimeSampling time_sampling_from_name(const std::string& name) {
  if (name == "uniform") return TimeSampling::kUniform;
  if (name == "bell") return TimeSampling::kBell;
  throw Error("time sampling must be 'uniform' or 'bell', got '" + name + "'");
}

namespace {

using Clock = std::chrono::steady_clock;
using train::CheckpointData;

const char* dtype_word(DType d) { return d == DType::BF16 ? "bf16" : "f32"; }
DType dtype_from_word(const std::string& s, const std::string& file) {
  if (s == "bf16") return DType::BF16;
  if (s == "f32") return DType::F32;
  throw Error(file + ": field 'compute' must be f32 or bf16, got '" + s + "'");
}

// The run settings a resumed run must reuse to continue exactly.
struct RunSettings {
  int batch = 0, seq_len = 0;
  int64_t steps = 0, warmup = 0;
  double lr = 0, min_lr_ratio = 0, beta1 = 0, beta2 = 0, adam_eps = 0, weight_decay = 0, clip = 0;
  bool sft = false;
  uint64_t seed = 0;
  DType compute = DType::F32;
  TimeSampling time_sampling = TimeSampling::kUniform;
};

RunSettings settings_from_options(const TrainOptions& o) {
  return {o.batch, o.seq_len, o.steps, o.warmup, o.lr, o.min_lr_ratio, o.beta1, o.beta2, o.adam_eps,
          o.weight_decay, o.clip, o.sft, o.seed, o.compute, o.time_sampling};
}

nlohmann::json state_json(const RunSettings& r, const ModelShape& shape, int64_t step) {
  return {{"format", "unmask-train-1"},
          {"step", step},
          {"data_cursor", step},
          {"rng", "splitmix64 streams keyed by (seed, purpose, step, index)"},
          {"seed", r.seed},
          {"shape", train::shape_to_json(shape)},
          {"batch", r.batch},
          {"seq_len", r.seq_len},
          {"steps", r.steps},
          {"warmup", r.warmup},
          {"lr", r.lr},
          {"min_lr_ratio", r.min_lr_ratio},
          {"beta1", r.beta1},
          {"beta2", r.beta2},
          {"adam_eps", r.adam_eps},
          {"weight_decay", r.weight_decay},
          {"clip", r.clip},
          {"sft", r.sft},
          {"compute", dtype_word(r.compute)},
          {"time_sampling", time_sampling_name(r.time_sampling)}};
}

// A resumed run keeps the checkpoint's settings (only the total step count may change,
// which also stretches the cosine schedule).
RunSettings settings_from_state(const nlohmann::json& j, int64_t steps, const std::string& file) {
  try {
    RunSettings r;
    r.batch = j.at("batch").get<int>();
    r.seq_len = j.at("seq_len").get<int>();
    r.steps = steps;
    r.warmup = j.at("warmup").get<int64_t>();
    r.lr = j.at("lr").get<double>();
    r.min_lr_ratio = j.at("min_lr_ratio").get<double>();
    r.beta1 = j.at("beta1").get<double>();
    r.beta2 = j.at("beta2").get<double>();
    r.adam_eps = j.at("adam_eps").get<double>();
    r.weight_decay = j.at("weight_decay").get<double>();
    r.clip = j.at("clip").get<double>();
    r.sft = j.at("sft").get<bool>();
    r.seed = j.at("seed").get<uint64_t>();
    r.compute = dtype_from_word(j.at("compute").get<std::string>(), file);
    // Absent in checkpoints written before the option existed: they sampled uniformly.
    r.time_sampling = time_sampling_from_name(j.value("time_sampling", std::string("uniform")));
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": " + e.what());
  }
}

SpecialTokens special_tokens(const Tokenizer& tok) {
  SpecialTokens s;
  const auto mask = tok.special_id(TokenRole::kMask), eos = tok.special_id(TokenRole::kEos);
  check(mask.has_value(), tok.source() + ": the tokenizer has no mask token (needed by the diffusion objective)");
  check(eos.has_value(), tok.source() + ": the tokenizer has no eos token (documents are joined with it)");
  s.mask = *mask;
  s.eos = *eos;
  s.pad = tok.special_id(TokenRole::kPad).value_or(*eos);
  s.bos = tok.special_id(TokenRole::kBos).value_or(-1);
  return s;
}

std::string clock_text(double seconds) {
  const long s = long(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

void draw_progress(int64_t done, int64_t total, double loss, double tokens_per_s, double eta_s) {
  constexpr int kWidth = 24;
  const int filled = total > 0 ? int(double(kWidth) * double(done) / double(total)) : kWidth;
  std::string bar(size_t(filled), '#');
  bar.resize(size_t(kWidth), '-');
  std::fprintf(stderr, "\r[%s] step %lld/%lld  loss %.4f  %.0f tok/s  ETA %s ", bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total), loss, tokens_per_s,
               clock_text(eta_s).c_str());
  std::fflush(stderr);
}

}  // namespace

TrainSummary run_training(const TrainOptions& o) {
  check(!o.data_files.empty(), "train: no --data files given");
  check(o.steps > 0, "train: --steps must be positive");
  const Tokenizer tok = Tokenizer::from_dir(o.tokenizer_dir);
  const SpecialTokens special = special_tokens(tok);

  CheckpointData ck;
  RunSettings run;
  int64_t start = 0;
  check(o.init_from.empty() || o.resume_dir.empty(), "train: give --resume or --init-from, not both");
  if (!o.resume_dir.empty()) {
    ck = train::load_checkpoint(o.resume_dir);
    start = ck.state["step"].get<int64_t>();
    run = settings_from_state(ck.state, o.steps, o.resume_dir + "/training_state.json");
    check(ck.layout.shape.vocab == tok.vocab_size(),
          o.resume_dir + ": checkpoint vocab " + std::to_string(ck.layout.shape.vocab) +
              " differs from the tokenizer's " + std::to_string(tok.vocab_size()));
  } else {
    run = settings_from_options(o);
    // A run started from another checkpoint (e.g. longer sequences after a short-sequence
    // phase) takes that checkpoint's shape and weights; only the optimizer starts afresh.
    CheckpointData init;
    if (!o.init_from.empty()) init = train::load_checkpoint(o.init_from);
    ModelShape shape = o.init_from.empty() ? o.shape : init.layout.shape;
    if (shape.vocab == 0) shape.vocab = tok.vocab_size();
    check(shape.vocab >= tok.vocab_size(), "train: vocab " + std::to_string(shape.vocab) +
                                               " is smaller than the tokenizer's " + std::to_string(tok.vocab_size()));
    shape.max_context = std::max(shape.max_context, o.seq_len);
    ck.layout = train::make_param_layout(shape);
    if (o.init_from.empty()) {
      ck.params.resize(ck.layout.total);
      train::init_params(ck.layout, run.seed, ck.params.data());
    } else {
      check(init.params.size() == ck.layout.total, o.init_from + ": parameter count does not match its shape");
      ck.params = std::move(init.params);
    }
    ck.adam_m.assign(ck.layout.total, 0.0f);
    ck.adam_v.assign(ck.layout.total, 0.0f);
  }
  check(run.batch > 0 && run.seq_len > 0, "train: --batch and --seq-len must be positive");
  const train::ParamLayout& layout = ck.layout;

  train::Corpus corpus;
  std::vector<train::SftExample> sft;
  if (run.sft)
    sft = train::load_sft(o.data_files, tok, special.eos);
  else
    corpus = train::load_corpus(o.data_files, tok, special.eos, o.progress);
  train::Corpus eval_corpus;
  if (!o.eval_files.empty()) {
    eval_corpus = train::load_corpus(o.eval_files, tok, special.eos, o.progress);
    check(int64_t(eval_corpus.tokens.size()) >= run.seq_len,
          "train: --eval-data has " + std::to_string(eval_corpus.tokens.size()) +
              " tokens, fewer than one window of seq-len " + std::to_string(run.seq_len));
  }

  std::ofstream log;
  if (!o.log_path.empty()) {
    log.open(o.log_path, start > 0 ? std::ios::app : std::ios::trunc);
    check(bool(log), o.log_path + ": cannot open log file");
  }
  auto write_log = [&](const nlohmann::json& j) {
    if (log.is_open()) log << j.dump() << "\n" << std::flush;
  };
  auto save = [&](int64_t step) {
    if (o.out_dir.empty()) return;
    ck.state = state_json(run, layout.shape, step);
    train::save_checkpoint(o.out_dir, ck, o.tokenizer_dir, special, o.save_dtype);
  };
  auto evaluate = [&](int64_t step) {
    if (eval_corpus.tokens.empty()) return;
    const auto model = train::model_view(layout, ck.params.data(), special);
    EvalOptions e;
    e.seq_len = run.seq_len;
    e.batch = run.batch;
    e.samples = std::max(2, o.eval_batches * run.batch);
    e.seed = run.seed;
    e.bytes = eval_corpus.bytes;
    const EvalResult r = evaluate_likelihood(*model, eval_corpus.tokens, e);
    write_log({{"step", step},
               {"eval_loss", r.nats_per_token},
               {"eval_loss_se", r.nats_per_token_se},
               {"eval_bits_per_byte", r.bits_per_byte},
               {"eval_bits_per_byte_se", r.bits_per_byte_se},
               {"eval_samples", r.samples}});
    if (o.progress)
      std::fprintf(stderr, "\neval @ step %lld: %.4f +- %.4f nats/token, %.4f bits/byte\n",
                   static_cast<long long>(step), r.nats_per_token, r.nats_per_token_se, r.bits_per_byte);
  };

  const train::ObjectiveOptions obj{run.batch,  run.seq_len, special.mask, special.eos, 1e-3, 0.01, run.seed,
                                    run.time_sampling};
  const train::LrSchedule schedule{run.lr, run.min_lr_ratio, run.warmup, run.steps};
  const train::AdamWOptions adam{run.beta1, run.beta2, run.adam_eps, run.weight_decay};
  const train::StepOptions step_options{run.compute};
  train::WorkspacePtr ws = train::make_workspace();
  std::vector<float> grads(layout.total);

  TrainSummary summary;
  summary.first_step = summary.last_step = start;
  const auto t0 = Clock::now();
  int64_t tokens_done = 0;
  for (int64_t step = start; step < run.steps; ++step) {
    if (o.stop_after > 0 && step >= o.stop_after) break;
    if (o.stop && o.stop->load()) {
      summary.interrupted = true;
      break;
    }
    const auto ts = Clock::now();
    const train::TrainBatch batch = run.sft ? train::sft_batch(sft, obj, step) : train::pretrain_batch(corpus, obj, step);
    const train::StepResult r = train::forward_backward(layout, ck.params.data(), batch, step_options, *ws, grads.data());
    check(std::isfinite(r.loss), "train: loss is not finite at step " + std::to_string(step + 1) +
                                     " (lower --lr or check the data)");
    const double grad_norm = train::clip_grad_norm(grads.data(), grads.size(), run.clip);
    const double lr = train::learning_rate(schedule, step);
    train::adamw_update(layout, ck.params.data(), grads.data(), ck.adam_m.data(), ck.adam_v.data(), step + 1, lr, adam);
    const double step_s = std::chrono::duration<double>(Clock::now() - ts).count();
    const int64_t tokens = int64_t(batch.batch) * batch.seq_len;
    tokens_done += tokens;
    summary.losses.push_back(r.loss);
    summary.last_step = step + 1;
    write_log({{"step", step + 1},
               {"loss", r.loss},
               {"lr", lr},
               {"grad_norm", grad_norm},
               {"tokens_per_s", double(tokens) / step_s},
               {"gflops_per_s", r.flops / step_s / 1e9}});
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const double rate = double(tokens_done) / elapsed;
    if (o.progress)
      draw_progress(step + 1, run.steps, r.loss, rate, elapsed / double(step + 1 - start) * double(run.steps - step - 1));
    const bool last = step + 1 == run.steps;
    if (o.eval_every > 0 && (step + 1) % o.eval_every == 0 && !last) evaluate(step + 1);
    if (o.save_every > 0 && (step + 1) % o.save_every == 0 && !last) save(step + 1);
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  summary.tokens_per_s = elapsed > 0 ? double(tokens_done) / elapsed : 0;
  if (o.progress) std::fprintf(stderr, "\n");
  if (!summary.interrupted && summary.last_step == run.steps && summary.last_step > start) evaluate(run.steps);
  save(summary.last_step);
  if (o.progress && !o.out_dir.empty())
    std::fprintf(stderr, "%s at step %lld -> %s\n", summary.interrupted ? "interrupted; checkpoint" : "checkpoint",
                 static_cast<long long>(summary.last_step), o.out_dir.c_str());
  return summary;
}

}  // namespace unmask
