#include "decode/schedule.h"

#include <cstdint>

#include "unmask/error.h"

namespace unmask::decode {

LladaBlockLayout llada_block_layout(int gen_length, int block_length, int steps, const std::string& decoder) {
  check(gen_length > 0, decoder + ": gen_length " + std::to_string(gen_length) + " must be positive");
  check(block_length > 0, decoder + ": block_length " + std::to_string(block_length) + " must be positive");
  check(steps > 0, decoder + ": steps " + std::to_string(steps) + " must be positive");
  check(gen_length % block_length == 0, decoder + ": gen_length " + std::to_string(gen_length) +
                                            " is not a multiple of block_length " + std::to_string(block_length));
  LladaBlockLayout l;
  l.num_blocks = gen_length / block_length;
  check(steps % l.num_blocks == 0, decoder + ": steps " + std::to_string(steps) + " is not a multiple of the " +
                                       std::to_string(l.num_blocks) + " blocks (gen_length / block_length)");
  l.steps_per_block = steps / l.num_blocks;
  return l;
}

std::vector<int> llada_num_transfer_tokens(int masks, int steps) {
  std::vector<int> out(size_t(steps), masks / steps);
  for (int i = 0; i < masks % steps; ++i) ++out[size_t(i)];
  return out;
}

std::vector<float> dream_timesteps(int steps, double eps) {
  const int64_t points = int64_t(steps) + 1;
  const float start = 1.0f, end = float(eps);
  // A single point (steps == 0) is just `start` in torch; callers never ask for it.
  const float step = points > 1 ? (end - start) / float(points - 1) : 0.0f;
  const int64_t halfway = points / 2;
  std::vector<float> ts(static_cast<size_t>(points));
  for (int64_t i = 0; i < points; ++i)
    ts[size_t(i)] = i < halfway ? start + step * float(i) : end - step * float(points - i - 1);
  return ts;
}

int dream_transfer_count(int num_masked, float t, float s, bool last_step) {
  const float n = float(num_masked);  // mask_index.sum() / batch: a float32 tensor
  if (last_step) return int(n);
  const float frac = 1.0f - s / t;
  return int(n * frac);
}

}  // namespace unmask::decode
