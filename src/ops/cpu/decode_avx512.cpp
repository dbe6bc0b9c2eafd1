// ops/cpu/decode_avx512.cpp — F16 and ggml block rows decoded to f32 with AVX-512, 16
// values per step, for the matmul's per-block decode (matmul_avx512.cpp). Each result is
// bit-for-bit quant::dequantize_row's: the same products in the same order, with the
// Q4_K product kept apart from its subtraction (an empty asm keeps the compiler from
// fusing them into one FMA, which would round once instead of twice).
#include "ops/cpu/immintrin_quiet.h"

#include <cstring>

#include "ops/cpu/qmatmul.h"
#include "unmask/quant.h"

namespace unmask::ops::qmatmul_detail {

namespace {

// 16 bytes at p widened to 16 int32 lanes.
inline __m512i bytes16(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m512 to_f32(__m512i v) { return _mm512_cvtepi32_ps(v); }
inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

void q8_0_block(const uint8_t* src, float* y) {
  const __m512 d = _mm512_set1_ps(half_at(src));
  for (int j = 0; j < 32; j += 16) {
    const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 + j)));
    _mm512_storeu_ps(y + j, _mm512_mul_ps(d, to_f32(q)));
  }
}

void q4_0_block(const uint8_t* src, float* y) {
  const __m512 d = _mm512_set1_ps(half_at(src));
  const __m512i qs = bytes16(src + 2), low = _mm512_set1_epi32(0xf), eight = _mm512_set1_epi32(8);
  _mm512_storeu_ps(y, _mm512_mul_ps(d, to_f32(_mm512_sub_epi32(_mm512_and_si512(qs, low), eight))));
  _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, to_f32(_mm512_sub_epi32(_mm512_srli_epi32(qs, 4), eight))));
}

void q4_k_block(const uint8_t* src, float* y) {
  quant::BlockQ4_K b;
  std::memcpy(&b, src, sizeof b);
  const float d = _cvtsh_ss(b.d), dmin = _cvtsh_ss(b.dmin);
  const __m512i low = _mm512_set1_epi32(0xf);
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    quant::q4_k_scale_min(b.scales, s, &sc, &m);
    const __m512 scale = _mm512_set1_ps(d * float(sc)), minimum = _mm512_set1_ps(dmin * float(m));
    const uint8_t* q = b.qs + 32 * (s / 2);
    for (int l = 0; l < 32; l += 16) {
      const __m512i v = bytes16(q + l);
      const __m512i nib = s % 2 ? _mm512_srli_epi32(v, 4) : _mm512_and_si512(v, low);
      __m512 prod = _mm512_mul_ps(scale, to_f32(nib));
      asm("" : "+v"(prod));  // round the product before the subtraction, as the reference
      _mm512_storeu_ps(y + 32 * s + l, _mm512_sub_ps(prod, minimum));
    }
  }
}

// Q6_K: within each half of 128 values, quarter k (32 values) takes the low (k < 2) or
// high (k >= 2) nibble of ql[l] (k even) or ql[l + 32] (k odd) and bits 2k..2k+1 of qh[l].
void q6_k_block(const uint8_t* src, float* y) {
  quant::BlockQ6_K b;
  std::memcpy(&b, src, sizeof b);
  const float d = _cvtsh_ss(b.d);
  const __m512i low = _mm512_set1_epi32(0xf), two = _mm512_set1_epi32(3), bias = _mm512_set1_epi32(32);
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; l += 16) {
      const __m512i ql0 = bytes16(b.ql + 64 * h + l), ql1 = bytes16(b.ql + 64 * h + l + 32);
      const __m512i qh = bytes16(b.qh + 32 * h + l);
      for (int k = 0; k < 4; ++k) {
        const __m512i ql = k & 1 ? ql1 : ql0;
        const __m512i nib = k >= 2 ? _mm512_srli_epi32(ql, 4) : _mm512_and_si512(ql, low);
        const __m512i hi = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(qh, 2 * k), two), 4);
        const int e = 128 * h + 32 * k + l;  // the 16 values e..e+15 share scale e / 16
        const __m512 scale = _mm512_set1_ps(d * float(b.scales[e / 16]));
        _mm512_storeu_ps(y + e, _mm512_mul_ps(scale, to_f32(_mm512_sub_epi32(_mm512_or_si512(nib, hi), bias))));
      }
    }
}

// F16 -> f32 with VCVTPH2PS, exact.
void f16_row(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint8_t*>(src);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + 2 * i))));
  for (; i < n; ++i) dst[i] = half_at(h + 2 * i);
}

template <void (*Block)(const uint8_t*, float*)>
void blocks(const void* src, float* y, int64_t n, int64_t elems, size_t bytes) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / elems; ++i) Block(p + size_t(i) * bytes, y + i * elems);
}

}  // namespace

void decode_row_avx512(DType t, const void* src, float* dst, int64_t n) {
  switch (t) {
    case DType::F16: f16_row(src, dst, n); return;
    case DType::Q8_0: blocks<q8_0_block>(src, dst, n, 32, sizeof(quant::BlockQ8_0)); return;
    case DType::Q4_0: blocks<q4_0_block>(src, dst, n, 32, sizeof(quant::BlockQ4_0)); return;
    case DType::Q4_K: blocks<q4_k_block>(src, dst, n, 256, sizeof(quant::BlockQ4_K)); return;
    case DType::Q6_K: blocks<q6_k_block>(src, dst, n, 256, sizeof(quant::BlockQ6_K)); return;
    default: quant::dequantize_row(t, src, dst, n); return;
  }
}

}  // namespace unmask::ops::qmatmul_detail
