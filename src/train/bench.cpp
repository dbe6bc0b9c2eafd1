// train/bench.cpp — timing of full training steps (bench_training in unmask/train.h).
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>

#include "train/data.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/rng.h"
#include "unmask/error.h"
#include "unmask/train.h"

namespace unmask {

namespace {
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
}  // namespace

TrainBenchResult bench_training(const TrainBenchOptions& o) {
  check(o.batch > 0 && o.seq_len > 0 && o.steps > 0, "train bench: batch, seq_len and steps must be positive");
  const train::ParamLayout layout = train::make_param_layout(o.shape);
  std::vector<float> params(layout.total), grads(layout.total), m(layout.total, 0.0f), v(layout.total, 0.0f);
  train::init_params(layout, 1, params.data());
  // Random tokens; the mask id is the last id, as the diffusion objective would use one.
  train::Corpus corpus;
  train::Rng rng(1, train::Stream::kWindow);
  for (int i = 0; i < o.batch * o.seq_len * 4; ++i)
    corpus.tokens.push_back(int32_t(rng.below(uint64_t(o.shape.vocab - 1))));
  train::ObjectiveOptions obj;
  obj.batch = o.batch;
  obj.seq_len = o.seq_len;
  obj.mask_id = o.shape.vocab - 1;
  obj.eos_id = 0;
  obj.cut_prob = 0;  // every timed step has the full length
  train::StepOptions step_options;
  step_options.compute = o.compute;
  train::WorkspacePtr ws = train::make_workspace();
  TrainBenchResult best;
  for (int step = 0; step <= o.steps; ++step) {
    const train::TrainBatch batch = train::pretrain_batch(corpus, obj, step);
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = process_cpu_seconds();
    const train::StepResult r = train::forward_backward(layout, params.data(), batch, step_options, *ws, grads.data());
    train::clip_grad_norm(grads.data(), grads.size(), 1.0);
    train::adamw_update(layout, params.data(), grads.data(), m.data(), v.data(), step + 1, 1e-4, {});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu_s = (process_cpu_seconds() - cpu0) / double(omp_get_max_threads());
    if (step == 0) continue;  // warm-up: first-touch allocation of the workspace
    if (best.step_s == 0 || s < best.step_s) {
      best.step_s = s;
      best.tokens_per_s = double(o.batch) * o.seq_len / s;
      best.gflops_per_s = r.flops / s / 1e9;
    }
    if (best.cpu_step_s == 0 || cpu_s < best.cpu_step_s) {
      best.cpu_step_s = cpu_s;
      best.cpu_tokens_per_s = double(o.batch) * o.seq_len / cpu_s;
      best.cpu_gflops_per_s = r.flops / cpu_s / 1e9;
    }
  }
  return best;
}

}  // namespace unmask
