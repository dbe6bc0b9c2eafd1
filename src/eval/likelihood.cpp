// eval/likelihood.cpp — the Monte-Carlo masked-diffusion likelihood of unmask/eval.h.
// Batches `batch` samples (windows with their masks) per forward call and runs the LM
// head only on the masked rows; cross-entropies are accumulated in double.
#include "unmask/eval.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/splitmix64.h"
#include "unmask/error.h"

namespace unmask {

namespace {

// A small explicit generator (not <random>'s distributions, whose output is
// implementation-defined) so that a seed means the same samples everywhere.
struct SampleRng {
  uint64_t state;
  uint64_t next() { return state = splitmix64_at(state); }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  // Uniform in [0, n) (n small: the modulo bias is below 2^-40).
  uint64_t below(uint64_t n) { return next() % n; }
};

struct Sample {
  int window = 0;
  std::vector<int32_t> masked;  // positions in the window, l of them
};

// The strata order, then per sample: window, l and the masked positions.
std::vector<Sample> draw_samples(int n, int windows, int L, uint64_t seed) {
  std::vector<int> stratum(static_cast<size_t>(n));
  std::iota(stratum.begin(), stratum.end(), 0);
  SampleRng order{splitmix64_at(seed ^ 0x5eed0fa11ull)};
  for (size_t i = stratum.size(); i > 1; --i) std::swap(stratum[i - 1], stratum[order.below(i)]);
  std::vector<Sample> out(static_cast<size_t>(n));
  std::vector<int32_t> slots(static_cast<size_t>(L));
  for (int i = 0; i < n; ++i) {
    SampleRng rng{splitmix64_at(seed) ^ splitmix64_at(uint64_t(i) + 1)};
    Sample& s = out[size_t(i)];
    s.window = n >= windows ? i % windows : int(int64_t(i) * windows / n);
    const double t = (stratum[size_t(i)] + rng.uniform()) / n;
    const int l = std::min(L, 1 + int(t * L));
    std::iota(slots.begin(), slots.end(), 0);
    for (int k = 0; k < l; ++k) std::swap(slots[size_t(k)], slots[size_t(k) + rng.below(uint64_t(L - k))]);
    s.masked.assign(slots.begin(), slots.begin() + l);
    std::sort(s.masked.begin(), s.masked.end());
  }
  return out;
}

// -log softmax(row)[target], in double.
double cross_entropy(const float* row, int vocab, int32_t target) {
  const float mx = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - double(mx));
  return double(mx) + std::log(sum) - double(row[target]);
}

void validate(const Model& model, const std::vector<int32_t>& tokens, const EvalOptions& o) {
  const ModelConfig& c = model.config;
  if (c.special.mask < 0) throw Error(model.dir + ": the model declares no mask token (config mask_token_id)");
  if (o.samples < 2) throw Error("eval: samples must be at least 2 (for a standard error), got " + std::to_string(o.samples));
  if (o.seq_len < 1) throw Error("eval: seq_len must be positive, got " + std::to_string(o.seq_len));
  if (o.batch < 1) throw Error("eval: batch must be positive, got " + std::to_string(o.batch));
  if (c.max_context > 0 && o.seq_len > c.max_context)
    throw Error("eval: seq_len " + std::to_string(o.seq_len) + " exceeds the model's context of " +
                std::to_string(c.max_context));
  if (int64_t(tokens.size()) < o.seq_len)
    throw Error("eval: " + std::to_string(tokens.size()) + " tokens do not fill one window of seq_len " +
                std::to_string(o.seq_len));
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= c.vocab)
      throw Error("eval: token " + std::to_string(i) + " has id " + std::to_string(tokens[i]) +
                  ", outside the model's vocabulary of " + std::to_string(c.vocab));
}

}  // namespace

EvalResult evaluate_likelihood(const Model& model, const std::vector<int32_t>& tokens, const EvalOptions& o) {
  validate(model, tokens, o);
  const ModelConfig& c = model.config;
  const int L = o.seq_len;
  EvalResult r;
  r.samples = o.samples;
  r.seq_len = L;
  r.windows = int(std::min<int64_t>(int64_t(tokens.size()) / L, 1 << 30));
  r.tokens = int64_t(tokens.size());
  r.bytes = o.bytes;
  const std::vector<Sample> samples = draw_samples(o.samples, r.windows, L, o.seed);
  r.sample_nats.assign(samples.size(), 0.0);

  ForwardBatch batch;
  ForwardOutput out;
  for (size_t first = 0; first < samples.size(); first += size_t(o.batch)) {
    const size_t last = std::min(samples.size(), first + size_t(o.batch));
    batch.tokens.clear();
    batch.positions.clear();
    batch.seq_offsets.assign(1, 0);
    batch.logit_rows.clear();
    std::vector<int32_t> targets;
    for (size_t i = first; i < last; ++i) {
      const Sample& s = samples[i];
      const int32_t offset = int32_t(batch.tokens.size());
      const auto window = tokens.begin() + std::ptrdiff_t(s.window) * L;
      batch.tokens.insert(batch.tokens.end(), window, window + L);
      for (int32_t p = 0; p < L; ++p) batch.positions.push_back(p);
      for (int32_t p : s.masked) {
        targets.push_back(batch.tokens[size_t(offset + p)]);
        batch.logit_rows.push_back(offset + logit_row_for_slot(c, p));
      }
      for (int32_t p : s.masked) batch.tokens[size_t(offset + p)] = c.special.mask;
      batch.seq_offsets.push_back(int32_t(batch.tokens.size()));
    }
    forward(model, batch, &out);  // out.logits: [masked rows of the batch, vocab]
    size_t row = 0;
    for (size_t i = first; i < last; ++i) {
      double sum = 0;
      for (size_t k = 0; k < samples[i].masked.size(); ++k, ++row)
        sum += cross_entropy(out.logits.data() + row * size_t(c.vocab), c.vocab, targets[row]);
      r.sample_nats[i] = sum / double(samples[i].masked.size());
    }
    if (o.on_progress) o.on_progress(int(last), o.samples);
  }

  const double n = double(r.samples);
  const double mean = std::accumulate(r.sample_nats.begin(), r.sample_nats.end(), 0.0) / n;
  double ss = 0;
  for (double x : r.sample_nats) ss += (x - mean) * (x - mean);
  r.nats_per_token = mean;
  r.nats_per_token_se = std::sqrt(ss / (n - 1) / n);
  if (o.bytes > 0) {
    // nats/token -> bits/byte with the stream's tokens per byte.
    const double scale = double(r.tokens) / double(o.bytes) / std::log(2.0);
    r.bits_per_byte = mean * scale;
    r.bits_per_byte_se = r.nats_per_token_se * scale;
  }
  return r;
}

}  // namespace unmask
