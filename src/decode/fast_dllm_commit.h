// decode/fast_dllm_commit.h — one step of NVlabs/Fast-dLLM's LLaDA samplers
// (get_transfer_index / get_transfer_index_dynamic) on the logits of the queried slots,
// shared by the uncached generate (fast_dllm_llada.cpp) and the cached ones
// (fast_dllm_llada_cached.cpp), plus the cached ones' internal entry point.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "decode/sampling.h"
#include "unmask/decode.h"

namespace unmask::decode {

// Throws Error (naming `decoder`) on a non-finite or negative temperature, threshold
// or factor.
void check_fast_dllm_options(const FastDllmLladaOptions& opt, const std::string& decoder);

struct FastDllmCommit {
  std::vector<int32_t> committed;  // slots written this step (x0 may be the mask id)
  bool changed = false;            // some slot's token actually changed
};

// `slots` are the candidate slots (masked, in slot order) and `logits` their rows
// [slots.size()][vocab]. x0 = argmax (temperature 0) or float64 Gumbel-max;
// confidence = float64 softmax p[x0] (low_confidence) or U[0,1) (random); then
//   factor set:    the factor rule's count of the most confident;
//   threshold set: the best, plus every other one with confidence >= threshold;
//   otherwise:     the `scheduled` most confident.
// Writes the chosen slots' x0 into `x`.
FastDllmCommit fast_dllm_commit(const FastDllmLladaOptions& opt, int vocab, const std::vector<int32_t>& slots,
                                const std::vector<float>& logits, int scheduled, Rng& rng, std::vector<int32_t>& x);

// generate_with_prefix_cache / generate_with_dual_cache (opt.cache kPrefix / kDual).
std::vector<int32_t> fast_dllm_llada_cached_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                                     const FastDllmLladaOptions& opt, const StepCallback& on_step);

}  // namespace unmask::decode
