// NVlabs/Fast-dLLM llada/generate.py::generate (no KV cache), step for step.
//
// Differences from ML-GSAI's generate (llada_generate.cpp): no CFG and no EOS options;
// the confidence softmax runs in float64; each block loops until it holds no mask:
//   - threshold none: step i commits schedule[i] slots (an i past the schedule is an
//     IndexError upstream: we throw);
//   - threshold T: k = #masked slots up to the block end (leftovers of earlier blocks
//     included); of the top k the best is always committed, the others unless their
//     confidence < T;
//   - factor f (takes precedence): get_transfer_index_dynamic's count (commit.h).
// As upstream, x0 may be the mask id ("commits" a mask: the slot stays masked).
#include <cmath>

#include "decode/canvas.h"
#include "decode/commit.h"
#include "decode/sampling.h"
#include "decode/schedule.h"
#include "decode/scoring.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {

namespace {

// A block whose loop runs this many calls per block slot is declared stuck (only
// reachable when sampling at T > 0 keeps drawing the mask id; at T = 0 a call that
// changes nothing is detected at once).
constexpr int kMaxCallsPerBlockSlot = 1000;

}  // namespace

std::vector<int32_t> fast_dllm_llada_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                              const FastDllmLladaOptions& opt, const StepCallback& on_step) {
  const std::string name = "fast_dllm_llada_generate";
  const auto layout = decode::llada_block_layout(opt.gen_length, opt.block_length, opt.steps, name);
  std::vector<int32_t> x = decode::init_canvas(src, prompt, opt.gen_length, opt.mask_id, name);
  check(std::isfinite(opt.temperature) && opt.temperature >= 0,
        name + ": temperature " + std::to_string(opt.temperature) + " must be >= 0");
  check(!opt.threshold || std::isfinite(*opt.threshold), name + ": threshold must be finite");
  check(!opt.factor || std::isfinite(*opt.factor), name + ": factor must be finite");
  const int V = src.vocab, P = int(prompt.size());
  const int32_t mask = opt.mask_id;
  const bool adaptive = opt.threshold || opt.factor;

  decode::Rng rng(opt.seed);
  std::vector<float> logits;
  std::vector<double> probs(static_cast<size_t>(V));
  int step = 0;
  for (int b = 0; b < layout.num_blocks; ++b) {
    const int block_start = P + b * opt.block_length, block_end = block_start + opt.block_length;
    const std::vector<int> schedule = decode::llada_num_transfer_tokens(
        decode::count_masks(x, mask, block_start, block_end), layout.steps_per_block);
    for (int i = 0; decode::count_masks(x, mask, block_start, block_end) > 0; ++i, ++step) {
      if (!adaptive)
        check(i < layout.steps_per_block,
              name + ": block " + std::to_string(b) + " still holds a mask after its " +
                  std::to_string(layout.steps_per_block) + " scheduled steps (the argmax was the mask id; "
                  "the reference fails with IndexError here)");
      check(i < kMaxCallsPerBlockSlot * opt.block_length,
            name + ": block " + std::to_string(b) + " made no progress in " + std::to_string(i) + " calls");
      const std::vector<int32_t> slots = decode::masked_slots(x, mask, block_end);
      const size_t n = slots.size();
      decode::query_logits(src, {x}, slots, logits);
      std::vector<int32_t> x0(n);
      std::vector<double> conf(n);
      for (size_t j = 0; j < n; ++j) {
        const float* row = logits.data() + j * size_t(V);
        x0[j] = opt.temperature == 0 ? decode::argmax_first(row, V)
                                     : decode::gumbel_argmax(row, V, opt.temperature, rng);
      }
      for (size_t j = 0; j < n; ++j) {
        if (opt.remasking == Remasking::kLowConfidence) {
          decode::softmax_f64(logits.data() + j * size_t(V), V, probs.data());
          conf[j] = probs[size_t(x0[j])];
        } else {
          conf[j] = rng.uniform_f32();  // torch.rand: float32 confidences
        }
      }
      std::vector<int> chosen;
      if (opt.factor) {
        chosen = decode::top_k_indices(conf, decode::factor_rule_count(conf, *opt.factor));
      } else if (opt.threshold) {
        const double t = *opt.threshold;
        // float32 confidences (random remasking) compare in float32, as torch does with a Python float.
        const bool f32 = opt.remasking == Remasking::kRandom;
        chosen = decode::threshold_select(conf, int(n), [&](double c) { return f32 ? float(c) < float(t) : c < t; });
      } else {
        chosen = decode::top_k_indices(conf, schedule[size_t(i)]);
      }
      bool changed = false;
      std::vector<int32_t> committed;
      for (int j : chosen) {
        int32_t& slot = x[size_t(slots[size_t(j)])];
        changed |= slot != x0[size_t(j)];
        slot = x0[size_t(j)];
        committed.push_back(slots[size_t(j)]);
      }
      decode::emit_step(on_step, step, adaptive ? 0 : opt.steps, x, std::move(committed), P, mask);
      if (adaptive && !changed && opt.temperature == 0 && decode::count_masks(x, mask, block_start, block_end) > 0)
        throw Error(name + ": step " + std::to_string(step) + " committed only the mask id at temperature 0; "
                    "the reference would repeat it forever");
    }
  }
  return x;
}

}  // namespace unmask
