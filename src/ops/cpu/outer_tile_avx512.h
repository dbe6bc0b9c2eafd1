// ops/cpu/outer_tile_avx512.h — the outer-product micro-kernel shared by the packed GEMM
// (gemm_avx512.cpp) and attention's P·V (vec_math_avx512.cpp): an R x 64 tile of C in 4R
// zmm accumulators; per step p, 64 values of B's row p (masked to the tile's width) times
// one broadcast A(r, p) per row, one FMA per term. Include only from *_avx512.cpp files.
#pragma once
#include <cstdint>

#include "ops/cpu/immintrin_quiet.h"

namespace unmask::ops::outer_tile {

// Lanes of the v-th vector of a tile `width` columns wide.
inline void width_masks(int64_t width, __mmask16 (&m)[4]) {
  for (int v = 0; v < 4; ++v) {
    const int64_t left = width - 16 * v;
    m[v] = left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
  }
}

// acc = C[0:R, 0:width] (row stride ldc), or 0 when c is null.
template <int R>
inline void load(__m512 (&acc)[R][4], const float* c, int64_t ldc, const __mmask16 (&m)[4]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[r][v] = c ? _mm512_maskz_loadu_ps(m[v], c + r * ldc + 16 * v) : _mm512_setzero_ps();
}

// acc[r] += sum_{p < steps} a(r, p) * b_row(p)[0:width], p in order.
template <int R, class A, class BRow>
inline void accumulate(__m512 (&acc)[R][4], const __mmask16 (&m)[4], int64_t steps, A a, BRow b_row) {
  for (int64_t p = 0; p < steps; ++p) {
    const float* row = b_row(p);
    __m512 b[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) b[v] = _mm512_maskz_loadu_ps(m[v], row + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a(r, p));
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_fmadd_ps(x, b[v], acc[r][v]);
    }
  }
}

// C[0:R, 0:width] = acc.
template <int R>
inline void store(const __m512 (&acc)[R][4], float* c, int64_t ldc, const __mmask16 (&m)[4]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) _mm512_mask_storeu_ps(c + r * ldc + 16 * v, m[v], acc[r][v]);
}

}  // namespace unmask::ops::outer_tile
