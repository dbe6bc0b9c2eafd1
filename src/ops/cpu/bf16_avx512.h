// ops/cpu/bf16_avx512.h — unmask::f32_to_bf16 (round to nearest even; NaN kept, made
// quiet) on 16 or 4 f32 lanes, for the AVX-512 files (matmul, vec_math, transposes).
// Include only from *_avx512.cpp files.
#pragma once
#include <cstdint>

#include "ops/cpu/immintrin_quiet.h"

namespace unmask::ops::bf16x {

// The bf16 bits of each lane, in the low 16 bits of its 32-bit lane.
inline __m512i bits(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}
inline __m128i bits(__m128 v) {
  const __m128i u = _mm_castps_si128(v);
  const __m128i lsb = _mm_and_si128(_mm_srli_epi32(u, 16), _mm_set1_epi32(1));
  const __m128i rounded = _mm_srli_epi32(_mm_add_epi32(u, _mm_add_epi32(lsb, _mm_set1_epi32(0x7fff))), 16);
  const __mmask8 nan = _mm_cmpgt_epu32_mask(_mm_and_si128(u, _mm_set1_epi32(0x7fffffff)), _mm_set1_epi32(0x7f800000));
  return _mm_mask_or_epi32(rounded, nan, _mm_srli_epi32(u, 16), _mm_set1_epi32(0x40));
}

// unmask::round_to_bf16 per lane (the bf16 value back as f32).
inline __m512 round(__m512 v) { return _mm512_castsi512_ps(_mm512_slli_epi32(bits(v), 16)); }
inline __m128 round(__m128 v) { return _mm_castsi128_ps(_mm_slli_epi32(bits(v), 16)); }

// 16 lanes as 16 bf16 values at p.
inline void store(uint16_t* p, __m512 v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(bits(v)));
}

}  // namespace unmask::ops::bf16x
