// ops/cpu/transpose_avx512.cpp — matrix transposes in 16 x 16 tiles held in registers
// (unpack / shuffle network on 32-bit lanes), the remainder rows and columns by scalar
// copies: f32 -> f32, f32 -> bf16 (rounded as unmask::f32_to_bf16) and 16-bit -> 16-bit
// (widened to 32-bit lanes and narrowed back). The result is exactly the scalar loop's.
#include "ops/cpu/bf16_avx512.h"
#include "ops/cpu/immintrin_quiet.h"
#include "ops/cpu/matmul_grad.h"

#include <algorithm>

namespace unmask::ops::matmul_grad_detail {

namespace {

// dst[c, r] = src[r, c] for one 16 x 16 tile (row strides lds / ldd, in elements);
// load(p) gives 16 elements as 32-bit lanes, store(p, v) writes a transposed row.
template <typename S, typename D, class Load, class Store>
void transpose_tile16(const S* src, int64_t lds, D* dst, int64_t ldd, Load load, Store store) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = load(src + i * lds);
  // Stage 1: interleave pairs of rows (32-bit elements).
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // Stage 2: 64-bit pairs across row pairs.
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  // Stage 3: 128-bit lanes across groups of four rows.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  // Stage 4: 256-bit halves across groups of eight rows.
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
  // r[j] now holds column j of the tile, rows 0..15 in order.
  for (int j = 0; j < 16; ++j) store(dst + j * ldd, r[j]);
}

// The whole [rows, cols] matrix: tiles, then the remainder by convert(src element).
template <typename S, typename D, class Load, class Store, class Convert>
void transpose_all(const S* src, int64_t rows, int64_t cols, D* dst, Load load, Store store, Convert convert) {
  const int64_t r16 = rows / 16 * 16, c16 = cols / 16 * 16;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t c0 = 0; c0 < cols; c0 += 16) {
    if (c0 < c16)
      for (int64_t r0 = 0; r0 < r16; r0 += 16)
        transpose_tile16(src + r0 * cols + c0, cols, dst + c0 * rows + r0, rows, load, store);
    const int64_t c_end = std::min(cols, c0 + 16);
    // Rows past the last whole tile (every column block), then columns past the last one.
    for (int64_t c = c0; c < c_end; ++c)
      for (int64_t r = c0 < c16 ? r16 : 0; r < rows; ++r) dst[c * rows + r] = convert(src[r * cols + c]);
  }
}

// Loads / stores of 16 elements as 32-bit lanes, as function objects so they inline.
struct LoadF32 {
  __m512 operator()(const float* p) const { return _mm512_loadu_ps(p); }
};
struct LoadU16 {
  __m512 operator()(const uint16_t* p) const {
    return _mm512_castsi512_ps(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
  }
};
struct StoreF32 {
  void operator()(float* p, __m512 v) const { _mm512_storeu_ps(p, v); }
};
struct StoreU16 {
  void operator()(uint16_t* p, __m512 v) const {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(_mm512_castps_si512(v)));
  }
};
struct StoreBf16 {
  void operator()(uint16_t* p, __m512 v) const { bf16x::store(p, v); }
};

}  // namespace

void transpose_f32_avx512(const float* src, int64_t rows, int64_t cols, float* dst) {
  transpose_all(src, rows, cols, dst, LoadF32{}, StoreF32{}, [](float v) { return v; });
}

void transpose_f32_to_bf16_avx512(const float* src, int64_t rows, int64_t cols, uint16_t* dst) {
  transpose_all(src, rows, cols, dst, LoadF32{}, StoreBf16{}, [](float v) { return f32_to_bf16(v); });
}

void transpose_u16_avx512(const uint16_t* src, int64_t rows, int64_t cols, uint16_t* dst) {
  transpose_all(src, rows, cols, dst, LoadU16{}, StoreU16{}, [](uint16_t v) { return v; });
}

}  // namespace unmask::ops::matmul_grad_detail
