// ops/cpu/peak_avx2.cpp — AVX2 fallbacks of the peak probes (CPUs without AVX-512).
//
// Inline asm as in peak_avx512.cpp, on the 16 ymm registers, all zeroed first:
// f32 FMA with 12 accumulators ymm0..11; int8 with 6 accumulators ymm0..5 and their
// temporaries ymm6..11 (AVX2 has no dot instruction: vpmaddubsw forms 32 u8*s8
// products summed pairwise to i16, vpmaddwd by ones widens to i32, vpaddd accumulates,
// i.e. 32 multiply-adds = 64 ops per three instructions).
#include "ops/cpu/peak.h"

namespace unmask::ops::peak_detail {

double fma_f32_avx2(long iters) {
  long left = iters;
  asm volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n\t"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n\t"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n\t"
      "vpxor %%ymm4, %%ymm4, %%ymm4\n\t"
      "vpxor %%ymm5, %%ymm5, %%ymm5\n\t"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n\t"
      "vpxor %%ymm7, %%ymm7, %%ymm7\n\t"
      "vpxor %%ymm8, %%ymm8, %%ymm8\n\t"
      "vpxor %%ymm9, %%ymm9, %%ymm9\n\t"
      "vpxor %%ymm10, %%ymm10, %%ymm10\n\t"
      "vpxor %%ymm11, %%ymm11, %%ymm11\n\t"
      "vpxor %%ymm12, %%ymm12, %%ymm12\n\t"
      "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"
      "vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpxor %%ymm15, %%ymm15, %%ymm15\n\t"
      "1:\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm0\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm1\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm2\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm3\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm4\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm5\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm6\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm7\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm8\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm9\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm10\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm11\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(left)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc");
  return double(iters) * 12 * 8 * 2;  // 12 instructions x 8 lanes x (mul + add)
}

double int8_dot_avx2(long iters) {
  long left = iters;
  asm volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n\t"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n\t"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n\t"
      "vpxor %%ymm4, %%ymm4, %%ymm4\n\t"
      "vpxor %%ymm5, %%ymm5, %%ymm5\n\t"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n\t"
      "vpxor %%ymm7, %%ymm7, %%ymm7\n\t"
      "vpxor %%ymm8, %%ymm8, %%ymm8\n\t"
      "vpxor %%ymm9, %%ymm9, %%ymm9\n\t"
      "vpxor %%ymm10, %%ymm10, %%ymm10\n\t"
      "vpxor %%ymm11, %%ymm11, %%ymm11\n\t"
      "vpxor %%ymm12, %%ymm12, %%ymm12\n\t"
      "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"
      "vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpxor %%ymm15, %%ymm15, %%ymm15\n\t"
      "1:\n\t"
      "vpmaddubsw %%ymm13, %%ymm12, %%ymm6\n\t"
      "vpmaddwd %%ymm14, %%ymm6, %%ymm6\n\t"
      "vpaddd %%ymm6, %%ymm0, %%ymm0\n\t"
      "vpmaddubsw %%ymm13, %%ymm12, %%ymm7\n\t"
      "vpmaddwd %%ymm14, %%ymm7, %%ymm7\n\t"
      "vpaddd %%ymm7, %%ymm1, %%ymm1\n\t"
      "vpmaddubsw %%ymm13, %%ymm12, %%ymm8\n\t"
      "vpmaddwd %%ymm14, %%ymm8, %%ymm8\n\t"
      "vpaddd %%ymm8, %%ymm2, %%ymm2\n\t"
      "vpmaddubsw %%ymm13, %%ymm12, %%ymm9\n\t"
      "vpmaddwd %%ymm14, %%ymm9, %%ymm9\n\t"
      "vpaddd %%ymm9, %%ymm3, %%ymm3\n\t"
      "vpmaddubsw %%ymm13, %%ymm12, %%ymm10\n\t"
      "vpmaddwd %%ymm14, %%ymm10, %%ymm10\n\t"
      "vpaddd %%ymm10, %%ymm4, %%ymm4\n\t"
      "vpmaddubsw %%ymm13, %%ymm12, %%ymm11\n\t"
      "vpmaddwd %%ymm14, %%ymm11, %%ymm11\n\t"
      "vpaddd %%ymm11, %%ymm5, %%ymm5\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(left)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc");
  return double(iters) * 6 * 64;  // 6 dot steps x 32 multiply-adds x 2 ops
}

}  // namespace unmask::ops::peak_detail
