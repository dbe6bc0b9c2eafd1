// decode/schedule.h — how many slots each step commits.
#pragma once
#include <string>
#include <vector>

namespace unmask::decode {

// LLaDA's semi-autoregressive layout: gen_length / block_length blocks, steps /
// num_blocks steps each. Throws Error (naming `decoder`) unless gen_length,
// block_length and steps are positive, gen_length % block_length == 0 and
// steps % num_blocks == 0 (the reference asserts both).
struct LladaBlockLayout {
  int num_blocks = 0, steps_per_block = 0;
};
LladaBlockLayout llada_block_layout(int gen_length, int block_length, int steps, const std::string& decoder);

// LLaDA get_num_transfer_tokens: `masks` masked slots over `steps` steps:
// masks / steps each, the first masks % steps steps one more.
// 16 / 3 -> [6, 5, 5]; 32 / 12 -> eight 3s then four 2s.
std::vector<int> llada_num_transfer_tokens(int masks, int steps);

// Dream: torch.linspace(1, eps, steps + 1) in float32, reproducing torch's CPU
// kernel: step = (eps - 1) / steps in float32; point i is 1 + step * i for the first
// half ((steps + 1) / 2 points) and eps - step * (steps - i) for the rest.
std::vector<float> dream_timesteps(int steps, double eps);

// Dream's per-step count: int(num_masked * (1 - s / t)) in float32 tensor arithmetic
// (truncation toward zero), or all masked slots at the last step. May be 0.
int dream_transfer_count(int num_masked, float t, float s, bool last_step);

}  // namespace unmask::decode
