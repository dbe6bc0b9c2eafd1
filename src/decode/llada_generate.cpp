// ML-GSAI/LLaDA generate.py::generate, step for step (see docs/decoders.md).
//
// Per block b (slots [P + b*B, P + (b+1)*B)), with n = #masks in the block at its start
// and the schedule llada_num_transfer_tokens(n, steps_per_block), each step:
//   1. query the logits of every masked slot before the block end (the reference
//      computes all slots, but only these can be committed: later slots get -inf
//      confidence, committed slots keep their token);
//   2. optional CFG: one call on [x, x with the prompt masked], u + (cfg+1)(c - u);
//   3. logits_eos_inf: EOS logit -> -inf; x0 = argmax (T = 0) or float64 Gumbel-max;
//   4. confidence_eos_eot_inf: the reference's chained assignment
//      `noisy[eos] = logits[eot] = -inf` — at T = 0 `noisy` IS `logits`, so both EOS and
//      EoT get probability 0; at T > 0 only EoT does;
//   5. confidence = float32 softmax(logits)[x0] (low_confidence) or U[0,1) (random);
//   6. commit the schedule's count of highest-confidence slots, writing x0 — also when
//      x0 is the mask id itself (the slot stays masked, as upstream).
// Masks left over from earlier blocks stay eligible, as upstream.
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

using decode::Rng;

void check_options(const LladaGenerateOptions& opt, int vocab) {
  const std::string n = "llada_generate";
  check(std::isfinite(opt.temperature) && opt.temperature >= 0,
        n + ": temperature " + std::to_string(opt.temperature) + " must be >= 0");
  check(std::isfinite(opt.cfg_scale) && opt.cfg_scale >= 0, n + ": cfg_scale " + std::to_string(opt.cfg_scale) + " must be >= 0");
  auto check_id = [&](bool needed, int32_t id, const std::string& what, const std::string& flag) {
    if (!needed) return;
    check(id >= 0 && id < vocab, n + ": " + flag + " needs " + what + " in [0, " + std::to_string(vocab) + "), got " +
                                     std::to_string(id));
  };
  check_id(opt.logits_eos_inf || opt.confidence_eos_eot_inf, opt.eos_id, "eos_id",
           opt.logits_eos_inf ? "logits_eos_inf" : "confidence_eos_eot_inf");
  check_id(opt.confidence_eos_eot_inf, opt.eot_id, "eot_id", "confidence_eos_eot_inf");
}

}  // namespace

std::vector<int32_t> llada_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                    const LladaGenerateOptions& opt, const StepCallback& on_step) {
  const auto layout = decode::llada_block_layout(opt.gen_length, opt.block_length, opt.steps, "llada_generate");
  std::vector<int32_t> x = decode::init_canvas(src, prompt, opt.gen_length, opt.mask_id, "llada_generate");
  check_options(opt, src.vocab);
  const int V = src.vocab, P = int(prompt.size());
  const int32_t mask = opt.mask_id;
  const bool cfg = opt.cfg_scale > 0;
  // prompt_index = (x != mask_id) on the initial canvas: the slots CFG masks out.
  std::vector<bool> prompt_index(x.size());
  for (size_t s = 0; s < x.size(); ++s) prompt_index[s] = x[s] != mask;

  Rng rng(opt.seed);
  std::vector<float> logits, probs(static_cast<size_t>(V));
  int step = 0;
  for (int b = 0; b < layout.num_blocks; ++b) {
    const int block_start = P + b * opt.block_length, block_end = block_start + opt.block_length;
    const std::vector<int> schedule = decode::llada_num_transfer_tokens(
        decode::count_masks(x, mask, block_start, block_end), layout.steps_per_block);
    for (int i = 0; i < layout.steps_per_block; ++i, ++step) {
      const std::vector<int32_t> slots = decode::masked_slots(x, mask, block_end);
      const size_t n = slots.size();
      std::vector<std::vector<int32_t>> canvases{x};
      if (cfg) {
        std::vector<int32_t> un = x;
        for (size_t s = 0; s < un.size(); ++s)
          if (prompt_index[s]) un[s] = mask;
        canvases.push_back(std::move(un));
      }
      decode::query_logits(src, canvases, slots, logits);
      if (cfg) {
        // float32 as torch: the Python scalar (cfg + 1) becomes a float32 operand.
        const float scale = float(opt.cfg_scale + 1.0);
        const float* un = logits.data() + n * size_t(V);
        for (size_t e = 0; e < n * size_t(V); ++e) logits[e] = un[e] + scale * (logits[e] - un[e]);
      }
      std::vector<int32_t> x0(n);
      for (size_t j = 0; j < n; ++j) {
        float* row = logits.data() + j * size_t(V);
        if (opt.logits_eos_inf) row[opt.eos_id] = -INFINITY;
        x0[j] = opt.temperature == 0 ? decode::argmax_first(row, V)
                                     : decode::gumbel_argmax(row, V, opt.temperature, rng);
        if (opt.confidence_eos_eot_inf) {
          if (opt.temperature == 0) row[opt.eos_id] = -INFINITY;  // noisy logits alias the logits
          row[opt.eot_id] = -INFINITY;
        }
      }
      std::vector<float> conf(n);
      for (size_t j = 0; j < n; ++j) {
        if (opt.remasking == Remasking::kLowConfidence) {
          decode::softmax_f32(logits.data() + j * size_t(V), V, probs.data());
          conf[j] = probs[size_t(x0[j])];
        } else {
          conf[j] = rng.uniform_f32();
        }
      }
      std::vector<int32_t> committed;
      for (int j : decode::top_k_indices(conf, schedule[size_t(i)])) {
        x[size_t(slots[size_t(j)])] = x0[size_t(j)];
        committed.push_back(slots[size_t(j)]);
      }
      decode::emit_step(on_step, step, opt.steps, x, std::move(committed), P, mask);
    }
  }
  return x;
}

bool parse_remasking(const std::string& s, Remasking* out) {
  if (s == "low_confidence") *out = Remasking::kLowConfidence;
  else if (s == "random") *out = Remasking::kRandom;
  else return false;
  return true;
}

}  // namespace unmask
