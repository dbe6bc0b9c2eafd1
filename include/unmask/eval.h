// unmask/eval.h — held-out likelihood of a masked diffusion LM (LLaDA's lower-variance
// Monte-Carlo estimator).
//
// evaluate_likelihood borrows the model and the tokens for the duration of the call and
// owns nothing afterwards. The token stream is cut into windows of seq_len tokens (the
// tail that does not fill a window is left out). Monte-Carlo sample i (of `samples`):
//   window   w_i = i mod W when samples >= W, else floor(i * W / samples) (spread evenly)
//   l_i      masked-token count in 1..L, stratified: the samples' strata of [0,1) are
//            assigned in a seeded random order, t_i uniform in its stratum, l_i = 1 + floor(t_i L)
//   mask     l_i of the L positions, uniformly without replacement
//   X_i      = (1/l_i) * sum over masked positions of -log p(token | masked window)
// X_i is the LLaDA estimator L/l * sum CE expressed per token (divided by L); its mean over
// the samples estimates the negative log-likelihood in nats/token (an upper bound on the
// model's true NLL, as for every masked-diffusion ELBO). Every sample has its own RNG
// stream derived from (seed, i): results do not depend on batching or threads.
// Standard error: the sample standard deviation of X_i / sqrt(samples) — the iid formula,
// conservative under the stratification (which only removes variance).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "unmask/model.h"

namespace unmask {

struct EvalOptions {
  int samples = 128;   // Monte-Carlo samples (forward passes of seq_len tokens); at least 2
  int seq_len = 128;   // L: tokens per window
  uint64_t seed = 0;
  int batch = 8;       // windows per forward call
  // Bytes of text `tokens` decode to; when > 0 bits/byte are reported, using the whole
  // stream's bytes/token ratio for the evaluated windows.
  int64_t bytes = 0;
  std::function<void(int done, int total)> on_progress;  // after every forward call
};

struct EvalResult {
  double nats_per_token = 0, nats_per_token_se = 0;
  double bits_per_byte = 0, bits_per_byte_se = 0;  // 0 when options.bytes == 0
  int samples = 0, windows = 0, seq_len = 0;
  int64_t tokens = 0, bytes = 0;                  // of the whole stream given
  std::vector<double> sample_nats;                // X_i, nats/token, by sample
};

// Throws Error when the model has no mask token, the stream is shorter than one window,
// samples < 2, seq_len exceeds the model's context, or a token id is out of range.
EvalResult evaluate_likelihood(const Model& model, const std::vector<int32_t>& tokens, const EvalOptions& options);

}  // namespace unmask
