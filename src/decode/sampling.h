// decode/sampling.h — the seeded random stream and the draws decoders make from it.
//
// Same seed -> same draws on every platform: std::mt19937_64 is fully specified by
// the standard, and the integer -> float conversions are done here (the standard's
// uniform_real_distribution is implementation-defined). The stream is not torch's:
// sampled runs are reproducible within unmask, not bit-identical to PyTorch.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace unmask::decode {

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  // Uniform in [0, 1) with 53 random bits (torch.rand(..., dtype=float64)).
  double uniform() { return double(gen_() >> 11) * 0x1.0p-53; }
  // Uniform in [0, 1) with 24 random bits (torch.rand(...) in float32).
  float uniform_f32() { return float(double(gen_() >> 40) * 0x1.0p-24); }

 private:
  std::mt19937_64 gen_;
};

// Gumbel-max over one row of `n` logits as the LLaDA references do it, in float64:
// argmax_v exp(l_v) / (-log u_v)^temperature, u_v ~ U[0,1) (equivalent to sampling
// softmax(l / temperature)). Ties go to the first index, as torch.argmax.
int gumbel_argmax(const float* logits, int n, double temperature, Rng& rng);

// One draw from the categorical distribution `probs` (need not sum to 1; entries
// <= 0 are never drawn). Falls back to the first maximum when all are zero.
int sample_categorical(const float* probs, int n, Rng& rng);

// `k` distinct indices drawn without replacement with probability proportional to
// `weights`, best key first. Uses the exponential-race form torch.multinomial uses
// (top-k of w_i / E_i, E_i ~ Exp(1)). When fewer than k weights are positive, the
// rest are the lowest zero-weight indices in order.
std::vector<int> sample_without_replacement(const std::vector<float>& weights, int k, Rng& rng);

}  // namespace unmask::decode
