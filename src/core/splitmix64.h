// core/splitmix64.h — SplitMix64 (Steele et al. 2014) as a pure function: the output for
// state x (the generator adds the golden gamma, then finalises). Counter-based random numbers
// (random weights, likelihood samples, the trainer's streams) key it by what they draw, so a
// seed means the same values whatever the thread count or order.
#pragma once
#include <cstdint>

namespace unmask {

inline uint64_t splitmix64_at(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace unmask
