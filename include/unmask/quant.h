// unmask/quant.h — ggml's block-quantized weight formats: byte layouts, the scalar
// dequantize (the reference every kernel is tested against) and quantize.
//
// Layouts are ggml's (the GGUF on-disk format), one block after another along a row:
//   Q8_0  32 values, 34 B:  f16 d; int8 q[32]                      x = d * q
//   Q4_0  32 values, 18 B:  f16 d; u8 qs[16]                        x = d * (q - 8)
//         value j < 16 is the low nibble of qs[j], value j >= 16 the high nibble of qs[j-16]
//   Q4_K 256 values, 144 B: f16 d, dmin; u8 scales[12]; u8 qs[128]  x = d*sc[s]*q - dmin*m[s]
//         8 sub-blocks s of 32 with 6-bit scale sc[s] and min m[s] packed in scales[12]
//         (s < 4: low 6 bits of scales[s] / scales[s+4]; s >= 4: low nibble / high nibble of
//         scales[s+4] plus the top 2 bits of scales[s-4] / scales[s]); values 64c..64c+31
//         are the low nibbles of qs[32c..32c+31], values 64c+32..64c+63 the high nibbles.
//   Q6_K 256 values, 210 B: u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d
//                                                                   x = d*scales[s]*(q - 32)
//         16 sub-blocks s of 16; q is 6 bits: 4 from ql, 2 from qh (see quant.cpp).
// Block structs have 2-byte alignment, as blocks in a GGUF tensor do.
//
// Nothing here owns memory: every function reads and writes caller buffers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "unmask/tensor.h"

namespace unmask {

// f32 -> IEEE half, round to nearest even; overflow gives +-inf, NaN stays NaN.
uint16_t f32_to_f16(float f);

namespace quant {

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];
};
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ6_K) == 210);

// Unpacks sub-block s (0..7) scale and min of a Q4_K block's scales[12].
void q4_k_scale_min(const uint8_t* scales, int s, uint8_t* scale, uint8_t* min);

// n values of type t (F32, F16, BF16 or a block type; n a multiple of the block size)
// from src to f32 dst. The scalar reference.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// One 32-value block of a Q8_0 / Q4_0 / Q4_K / Q6_K row as int8 values and f32 factors,
// exactly (the int8 matmul kernels' weight operand, ops/cpu/qmatmul.h):
//   w[i] = scale[i / 16] * float(v[i]) - min    for i < 32, bit for bit dequantize_row's
// scale[0] == scale[1] except for Q6_K (sub-blocks of 16); min is 0 except for Q4_K.
// Values: Q8_0 [-127, 127], Q4_0 [-8, 7], Q4_K [0, 15], Q6_K [-32, 31].
struct Int8Block {
  int8_t v[32];
  float scale[2];
  float min;
};
// Block b (the b-th run of 32 values) of a row of type t.
void int8_block(DType t, const void* row, int64_t b, Int8Block* out);

// n f32 values to type t (same types and n rule). Worst-case error per value, with S the
// effective step of the value's (sub-)block after the scales are stored (see the tests):
//   F16 / BF16: round to nearest.  Q8_0: <= 0.57 * d.  Q4_0: <= |d| (one step: the value
//   opposite the block's extreme can round to 16 and clamps to 15), <= |d|/2 otherwise.
//   Q4_K: <= S/2 + dmin (the sub-block minimum is rounded up by < dmin, which can push
//   the top value past 15 steps).  Q6_K: <= |S| (as Q4_0, clamp at +31).
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace quant
}  // namespace unmask
