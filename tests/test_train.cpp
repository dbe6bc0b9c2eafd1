// The training objective (masks, t, weights, SFT layout), the training loop's exact
// resume, checkpoints that load as llada models, and the `unmask train` CLI (log,
// checkpoint, Ctrl-C).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>

#include "test_util.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "unmask/model.h"
#include "unmask/tokenizer.h"
#include "unmask/train.h"

extern char** environ;

namespace unmask::train {
namespace {

// A few KB of varied text (the tiny fixture tokenizer splits it into ~1-3 byte tokens).
std::string sample_text() {
  std::string s;
  for (int i = 0; i < 60; ++i)
    s += "def f" + std::to_string(i) + "(x):\n    return x * " + std::to_string(i * 7 % 13) + " + " +
         std::to_string(i) + "\n\n";
  return s;
}

ObjectiveOptions objective(int batch, int seq_len) {
  ObjectiveOptions o;
  o.batch = batch;
  o.seq_len = seq_len;
  o.mask_id = 99;
  o.eos_id = 98;
  o.seed = 7;
  return o;
}

Corpus counting_corpus(int n) {
  Corpus c;
  for (int i = 0; i < n; ++i) c.tokens.push_back(i % 90);
  return c;
}

TEST(TrainObjective, TimesAreStratifiedAcrossTheBatch) {
  const ObjectiveOptions o = objective(8, 16);
  for (int64_t step = 0; step < 50; ++step) {
    const std::vector<double> t = stratified_times(o, step);
    for (int b = 0; b < 8; ++b) {
      EXPECT_GT(t[size_t(b)], b / 8.0);
      EXPECT_LE(t[size_t(b)], (b + 1) / 8.0);
    }
  }
}

// Bell sampling: t_b is the Beta(2, 2) quantile of the b-th stratum, so F(t_b) = 3t^2 - 2t^3
// falls in (b/B, (b+1)/B], and over many steps t has Beta(2, 2)'s mean 1/2 and variance 1/20
// (uniform's is 1/12) with fewer sequences near t = 0 or 1.
TEST(TrainObjective, BellTimesAreBetaTwoTwoQuantilesOfTheStrata) {
  ObjectiveOptions o = objective(8, 16);
  o.time_sampling = TimeSampling::kBell;
  double sum = 0, sum2 = 0, outer = 0;
  int n = 0;
  for (int64_t step = 0; step < 4000; ++step) {
    const std::vector<double> t = stratified_times(o, step);
    for (int b = 0; b < 8; ++b) {
      const double x = t[size_t(b)], cdf = 3 * x * x - 2 * x * x * x;
      ASSERT_GT(x, 0.0);
      ASSERT_LE(x, 1.0);
      EXPECT_GT(cdf, b / 8.0 - 1e-9);
      EXPECT_LE(cdf, (b + 1) / 8.0 + 1e-9);
      sum += x;
      sum2 += x * x;
      outer += (x < 0.1 || x > 0.9) ? 1 : 0;
      ++n;
    }
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 0.01);
  EXPECT_NEAR(var, 0.05, 0.003);
  EXPECT_NEAR(outer / n, 2 * (3 * 0.01 - 2 * 0.001), 0.01);  // P(t < 0.1) = F(0.1) = 0.028, twice
  EXPECT_THROW(time_sampling_from_name("gaussian"), Error);
  EXPECT_EQ(time_sampling_from_name(time_sampling_name(TimeSampling::kBell)), TimeSampling::kBell);
}

TEST(TrainObjective, PretrainBatchMasksWithWeightOneOverPBL) {
  const ObjectiveOptions o = objective(4, 32);
  const Corpus c = counting_corpus(1000);
  double masked = 0, expected = 0;
  for (int64_t step = 0; step < 200; ++step) {
    const TrainBatch tb = pretrain_batch(c, o, step);
    const int L = tb.seq_len;
    const std::vector<double> t = stratified_times(o, step);
    for (int b = 0; b < 4; ++b) {
      const double p = (1 - o.eps) * t[size_t(b)] + o.eps;
      // a window of consecutive corpus tokens
      for (int i = 1; i < L; ++i)
        EXPECT_EQ(tb.target[size_t(b * L + i)], (tb.target[size_t(b * L + i - 1)] + 1) % 90);
      for (int i = 0; i < L; ++i) {
        const size_t r = size_t(b * L + i);
        if (tb.input[r] == o.mask_id) {
          EXPECT_FLOAT_EQ(tb.weight[r], float(1.0 / (p * 4 * L)));
          masked += 1;
        } else {
          EXPECT_EQ(tb.input[r], tb.target[r]);
          EXPECT_EQ(tb.weight[r], 0.0f);
        }
      }
      expected += p * L;
    }
  }
  // Masks are Bernoulli(p): the count is within a few standard deviations (~ sqrt(n)/2).
  EXPECT_NEAR(masked, expected, 4 * std::sqrt(expected));
}

TEST(TrainObjective, BatchesAreDeterministicInSeedAndStep) {
  ObjectiveOptions o = objective(3, 20);
  const Corpus c = counting_corpus(500);
  const TrainBatch a = pretrain_batch(c, o, 5), b = pretrain_batch(c, o, 5), other = pretrain_batch(c, o, 6);
  EXPECT_EQ(a.input, b.input);
  EXPECT_EQ(a.weight, b.weight);
  EXPECT_NE(a.input, other.input);
  o.seed = 8;
  EXPECT_NE(pretrain_batch(c, o, 5).input, a.input);
}

TEST(TrainObjective, AboutOnePercentOfBatchesAreCut) {
  const ObjectiveOptions o = objective(1, 64);
  const Corpus c = counting_corpus(300);
  int cut = 0;
  for (int64_t step = 0; step < 3000; ++step) {
    const TrainBatch tb = pretrain_batch(c, o, step);
    ASSERT_GE(tb.seq_len, 1);
    ASSERT_LE(tb.seq_len, 64);
    if (tb.seq_len < 64) ++cut;
  }
  EXPECT_GE(cut, 10);  // binomial(3000, 0.01): mean 30, sd 5.4
  EXPECT_LE(cut, 55);
}

TEST(TrainObjective, SftNeverMasksThePromptAndWeighsByAnswerLength) {
  const ObjectiveOptions o = objective(4, 12);
  std::vector<SftExample> ex = {{{1, 2, 3}, {4, 5, 98}}, {{6, 7, 8, 9, 10}, {11, 98}}};
  for (int64_t step = 0; step < 100; ++step) {
    const TrainBatch tb = sft_batch(ex, o, step);
    const std::vector<double> t = stratified_times(o, step);
    for (int b = 0; b < 4; ++b) {
      const int32_t* row = tb.target.data() + b * 12;
      const size_t prompt = row[0] == 1 ? 3 : 5;
      const double p = (1 - o.eps) * t[size_t(b)] + o.eps;
      for (int i = 0; i < 12; ++i) {
        const size_t r = size_t(b * 12 + i);
        if (size_t(i) < prompt) {
          EXPECT_EQ(tb.input[r], row[i]) << "prompt position masked";
        }
        if (size_t(i) >= prompt + 3) {
          EXPECT_EQ(row[i], 98) << "padding is EOS";
        }
        if (tb.input[r] == o.mask_id) {
          EXPECT_FLOAT_EQ(tb.weight[r], float(1.0 / (p * double(12 - prompt) * 4)));
        }
      }
    }
  }
}

// Presets are valid shapes; small and medium keep hidden and ffn multiples of 256 (whole
// 256-value quantization blocks), and an unknown name is an error naming the known ones.
TEST(TrainPresets, KnownNamesGiveValidShapesUnknownNamesFail) {
  for (const char* name : {"tiny", "small", "medium"}) {
    const ModelShape s = preset_shape(name);
    EXPECT_NO_THROW(validate_shape(ModelShape{s.hidden, s.layers, s.heads, s.ffn, 4096})) << name;
  }
  for (const char* name : {"small", "medium"}) {
    EXPECT_EQ(preset_shape(name).hidden % 256, 0) << name;
    EXPECT_EQ(preset_shape(name).ffn % 256, 0) << name;
  }
  EXPECT_LT(preset_shape("small").hidden, preset_shape("medium").hidden);
  try {
    preset_shape("huge");
    FAIL() << "no error for an unknown preset";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("medium"), std::string::npos) << e.what();
  }
}

// ---- the training loop ----

struct Fixture {
  test::TempDir dir;
  TrainOptions options;
  Fixture() {
    test::write_file(dir.file("train.txt"), sample_text());
    test::write_file(dir.file("eval.txt"), sample_text().substr(0, 900));
    options.data_files = {dir.file("train.txt")};
    options.tokenizer_dir = test::llada_dir();
    options.shape.hidden = 32;
    options.shape.layers = 2;
    options.shape.heads = 2;
    options.shape.ffn = 48;
    options.steps = 8;
    options.batch = 2;
    options.seq_len = 24;
    options.warmup = 2;
    options.lr = 3e-3;
    options.progress = false;
    options.save_dtype = DType::F32;
  }
};

// AdamW's AVX-512 span against the scalar one: every parameter, moment and velocity bit
// for bit, on odd lengths (masked tails), with and without decay, over a few steps.
TEST(TrainOptimizer, Avx512AdamWSpanEqualsScalar) {
  if (!ops::isa_available(ops::Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (int64_t n : {1, 15, 17, 1001}) {
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> p(static_cast<size_t>(n)), g(static_cast<size_t>(n));
    for (float& v : p) v = normal(rng);
    std::vector<float> p2 = p, m(static_cast<size_t>(n), 0.0f), m2 = m, v(static_cast<size_t>(n), 0.0f), v2 = v;
    for (int step = 1; step <= 3; ++step) {
      for (float& x : g) x = normal(rng) * float(step);
      AdamWSpan s{p.data(), g.data(), m.data(), v.data(), n, step == 2 ? 1.0f : 0.9999f, 0.9f, 0.95f,
                  1e-3f / (1.0f - std::pow(0.9f, float(step))), std::sqrt(1.0f - std::pow(0.95f, float(step))),
                  1e-8f};
      AdamWSpan s2 = s;
      s2.params = p2.data();
      s2.m = m2.data();
      s2.v = v2.data();
      adamw_span(ops::Isa::kScalar, s);
      adamw_span(ops::Isa::kAvx512, s2);
      ASSERT_EQ(0, std::memcmp(p.data(), p2.data(), p.size() * 4)) << "params, n " << n << " step " << step;
      ASSERT_EQ(0, std::memcmp(m.data(), m2.data(), m.size() * 4)) << "m, n " << n;
      ASSERT_EQ(0, std::memcmp(v.data(), v2.data(), v.size() * 4)) << "v, n " << n;
    }
    EXPECT_NE(p[0], 0.0f);
  }
}

// Gradient clipping: the returned norm is the L2 norm (against a long-double sum, over
// several 64K chunks), gradients are scaled to max_norm when above it and untouched below.
TEST(TrainOptimizer, ClipGradNormScalesToTheMaximum) {
  const size_t n = 200001;
  std::vector<float> g(n);
  for (size_t i = 0; i < n; ++i) g[i] = float(std::sin(double(i) * 0.37)) * 0.01f;
  long double ss = 0;
  for (float v : g) ss += (long double)v * v;
  const double want = double(std::sqrt(ss));
  std::vector<float> kept = g;
  EXPECT_NEAR(clip_grad_norm(kept.data(), n, want * 2), want, 1e-12 * want);
  EXPECT_EQ(kept, g);
  const double before = clip_grad_norm(g.data(), n, want / 4);
  EXPECT_NEAR(before, want, 1e-12 * want);
  EXPECT_NEAR(clip_grad_norm(g.data(), n, 0.0), want / 4, 1e-6 * want);
}


TEST(TrainLoop, ResumeContinuesBitForBit) {
  Fixture f;
  TrainOptions full = f.options;
  full.out_dir = f.dir.file("full");
  const TrainSummary a = run_training(full);
  ASSERT_EQ(a.losses.size(), 8u);

  TrainOptions first = f.options;
  first.out_dir = f.dir.file("part");
  first.stop_after = 3;
  const TrainSummary b = run_training(first);
  ASSERT_EQ(b.last_step, 3);
  TrainOptions second = f.options;
  second.resume_dir = f.dir.file("part");
  second.out_dir = f.dir.file("resumed");
  second.seed = 12345;  // ignored: the checkpoint's seed wins
  const TrainSummary c = run_training(second);
  EXPECT_EQ(c.first_step, 3);
  std::vector<double> joined = b.losses;
  joined.insert(joined.end(), c.losses.begin(), c.losses.end());
  ASSERT_EQ(joined.size(), a.losses.size());
  for (size_t i = 0; i < joined.size(); ++i) EXPECT_EQ(joined[i], a.losses[i]) << "step " << i;
  EXPECT_EQ(test::read_file(f.dir.file("full/model.safetensors")), test::read_file(f.dir.file("resumed/model.safetensors")));
  // Not vacuous: steps see different batches, so equal losses need identical state.
  EXPECT_NE(a.losses[3], a.losses[4]);
}

// --init-from: a new run (here with longer sequences) starts from the checkpoint's f32
// weights and shape, with fresh AdamW moments and its own step count. With lr 0 the
// weights must come out unchanged, which they would not if the run re-initialised them.
TEST(TrainLoop, InitFromStartsANewRunFromACheckpointsWeights) {
  Fixture f;
  f.options.out_dir = f.dir.file("short");
  f.options.steps = 4;
  run_training(f.options);
  const CheckpointData a = load_checkpoint(f.dir.file("short"));

  TrainOptions next = f.options;
  next.init_from = f.dir.file("short");
  next.out_dir = f.dir.file("long");
  next.shape.hidden = 64;  // ignored: the checkpoint's shape wins
  next.seq_len = 40;
  next.steps = 3;
  next.lr = 0;
  const TrainSummary s = run_training(next);
  EXPECT_EQ(s.first_step, 0);
  ASSERT_EQ(s.losses.size(), 3u);
  const CheckpointData b = load_checkpoint(f.dir.file("long"));
  EXPECT_EQ(b.layout.shape.hidden, 32);
  EXPECT_EQ(b.state["step"].get<int64_t>(), 3);
  EXPECT_EQ(b.state["seq_len"].get<int>(), 40);
  EXPECT_EQ(b.params, a.params);
  EXPECT_NE(b.adam_m, a.adam_m);  // three fresh steps, not the first run's four

  next.resume_dir = f.dir.file("short");
  EXPECT_THROW(run_training(next), Error);
}

TEST(TrainLoop, CheckpointLoadsAsALladaModel) {
  Fixture f;
  f.options.out_dir = f.dir.file("ckpt");
  f.options.steps = 2;
  run_training(f.options);
  const auto model = load_model(f.options.out_dir);
  EXPECT_EQ(model->config.family, "llada");
  EXPECT_EQ(model->config.hidden, 32);
  EXPECT_EQ(model->config.vocab, Tokenizer::from_dir(test::llada_dir()).vocab_size());
  EXPECT_EQ(model->config.special.mask, Tokenizer::from_dir(test::llada_dir()).special_id(TokenRole::kMask));
  ForwardBatch fb;
  fb.tokens = {1, 2, model->config.special.mask};
  fb.positions = {0, 1, 2};
  fb.logit_rows = {2};
  ForwardOutput out;
  forward(*model, fb, &out);
  for (float v : out.logits) ASSERT_TRUE(std::isfinite(v));
  EXPECT_TRUE(std::filesystem::exists(f.dir.file("ckpt/tokenizer.json")));
  EXPECT_EQ(test::read_json(f.dir.file("ckpt/training_state.json"))["step"], 2);
}

TEST(TrainLoop, SftTrainsOnPromptResponseJsonl) {
  Fixture f;
  std::string jsonl;
  for (int i = 0; i < 20; ++i)
    jsonl += "{\"prompt\": \"add " + std::to_string(i) + " and 1\", \"response\": \"" + std::to_string(i + 1) +
             "\"}\n";
  test::write_file(f.dir.file("sft.jsonl"), jsonl);
  f.options.data_files = {f.dir.file("sft.jsonl")};
  f.options.sft = true;
  f.options.steps = 3;
  f.options.out_dir = f.dir.file("sft-out");
  const TrainSummary s = run_training(f.options);
  ASSERT_EQ(s.losses.size(), 3u);
  for (double l : s.losses) EXPECT_TRUE(std::isfinite(l) && l > 0);
  EXPECT_EQ(test::read_json(f.dir.file("sft-out/training_state.json"))["sft"], true);
}

TEST(TrainLoop, BadInputsNameTheProblem) {
  Fixture f;
  TrainOptions o = f.options;
  o.out_dir = f.dir.file("x");
  o.data_files = {f.dir.file("missing.txt")};
  EXPECT_TRUE(test::throws_error([&] { run_training(o); }, {"missing.txt"}));
  o = f.options;
  o.shape.heads = 5;
  EXPECT_TRUE(test::throws_error([&] { run_training(o); }, {"heads"}));
  o = f.options;
  o.resume_dir = f.dir.file("nothing-here");
  EXPECT_TRUE(test::throws_error([&] { run_training(o); }, {"training_state.json"}));
  o = f.options;
  test::write_file(f.dir.file("short.txt"), "x = 1\n");
  o.eval_files = {f.dir.file("short.txt")};
  EXPECT_TRUE(test::throws_error([&] { run_training(o); }, {"--eval-data", "seq-len"}));
  o = f.options;
  o.sft = true;
  EXPECT_TRUE(test::throws_error([&] { run_training(o); }, {"train.txt", ".jsonl"}));
}

// ---- the CLI ----

std::vector<std::string> cli_args(const Fixture& f, const std::string& out, int steps) {
  return {UNMASK_CLI_PATH, "train", "--data", f.dir.file("train.txt"), "--tokenizer", test::llada_dir(),
          "--hidden", "32", "--layers", "1", "--heads", "2", "--ffn", "48", "--batch", "2", "--seq-len", "24",
          "--steps", std::to_string(steps), "--out", out, "--log", out + ".jsonl", "--threads", "1"};
}

TEST(TrainCli, WritesLogWithStepAndEvalObjects) {
  Fixture f;
  std::vector<std::string> args = cli_args(f, f.dir.file("run"), 4);
  args.insert(args.end(), {"--eval-data", f.dir.file("eval.txt"), "--eval-every", "2", "--eval-batches", "1"});
  const test::CommandResult r = test::run_command(args, f.dir);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.err;
  int steps = 0, evals = 0;
  std::istringstream log(test::read_text(f.dir.file("run.jsonl")));
  for (std::string line; std::getline(log, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("eval_loss")) {
      ++evals;
      EXPECT_GT(j["eval_loss"].get<double>(), 0.0);
    } else {
      ++steps;
      for (const char* key : {"step", "loss", "lr", "tokens_per_s", "grad_norm"}) EXPECT_TRUE(j.contains(key)) << key;
    }
  }
  EXPECT_EQ(steps, 4);
  EXPECT_EQ(evals, 2);  // at step 2 and at the end
  EXPECT_NE(r.err.find("tok/s"), std::string::npos);  // the progress bar
}

TEST(TrainCli, CtrlCLeavesAResumableCheckpoint) {
  Fixture f;
  const std::string out = f.dir.file("interrupted");
  std::vector<std::string> args = cli_args(f, out, 100000);
  args.push_back("--no-progress");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  // Wait until a few steps are logged, then interrupt.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::filesystem::exists(out + ".jsonl") && test::read_text(out + ".jsonl").size() > 300) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const int64_t step = test::read_json(out + "/training_state.json")["step"];
  EXPECT_GE(step, 1);
  EXPECT_LT(step, 100000);
  // and it resumes
  std::vector<std::string> resume = cli_args(f, f.dir.file("resumed"), int(step) + 1);
  resume.push_back("--resume");
  resume.push_back(out);
  const test::CommandResult r = test::run_command(resume, f.dir);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.err;
  EXPECT_EQ(test::read_json(f.dir.file("resumed/training_state.json"))["step"], step + 1);
}

}  // namespace
}  // namespace unmask::train
