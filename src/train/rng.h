// train/rng.h — the trainer's counter-based random numbers.
//
// Every random decision (init weights, data windows, t, masks) is drawn from a stream
// keyed by (seed, purpose, step, index), so the data order and masks of step s do not
// depend on what ran before: resuming at step s needs no saved generator state, and
// results are independent of the thread count. SplitMix64 (Steele et al. 2014) is the
// generator; its 64-bit state is the whole state.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/splitmix64.h"

namespace unmask::train {

inline uint64_t splitmix64(uint64_t& state) {
  const uint64_t z = splitmix64_at(state);
  state += 0x9e3779b97f4a7c15ull;
  return z;
}

// Purposes, so streams of different decisions never coincide.
enum class Stream : uint64_t { kInit = 1, kWindow, kTime, kMask, kCut, kEval };

class Rng {
 public:
  Rng(uint64_t seed, Stream purpose, uint64_t a = 0, uint64_t b = 0) : state_(seed) {
    splitmix64(state_);
    state_ ^= uint64_t(purpose) * 0xd1b54a32d192ed03ull;
    splitmix64(state_);
    state_ ^= a * 0x8cb92ba72f3d8dd7ull;
    splitmix64(state_);
    state_ ^= b * 0xaf251af3b0f025b5ull;
    splitmix64(state_);
  }
  uint64_t next() { return splitmix64(state_); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n), n > 0 (modulo bias < n / 2^64: negligible).
  uint64_t below(uint64_t n) { return next() % n; }
  // Standard normal (Box-Muller).
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace unmask::train
