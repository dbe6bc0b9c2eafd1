// ops/cpu/qmatmul_avx2.cpp — Q8_0 / Q4_0 / Q4_K / Q6_K weights x int8 activations with AVX2
// (CPUs without AVX-512 VNNI). The arithmetic of qmatmul_avx512.cpp on 8-lane vectors:
// AVX2 has no VPDPBUSD, so a 4-byte dot product per lane is VPMADDUBSW (unsigned x signed
// byte pairs summed to int16) then VPMADDWD by ones (int16 pairs to int32). VPMADDUBSW
// saturates at 32767: two products of codes u <= 63 (Q4_0, Q4_K: 15; Q6_K: 63) with
// |xq| <= 127 stay below 16002, but Q8_0's would not, so Q8_0 keeps signed codes v and
// multiplies |v| by sign(xq, v) (|v|, |xq| <= 127: at most 32258).
//
// Panels of 16 W rows (two groups of 8 lanes): lane l of panel[g][b][j] = bytes 4j..4j+3
// of block b of row 8g + l. The micro-kernel keeps R=2 x rows by 2 groups: 4 int32 + 4 f32
// accumulators, 2 W vectors, the x broadcast and the ones vector in 16 ymm registers.
#include "ops/cpu/immintrin_quiet.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/cpu/int8_blocks_avx2.h"
#include "ops/cpu/qmatmul.h"
#include "unmask/quant.h"

namespace unmask::ops::qmatmul_detail {

namespace {

constexpr int kR = 2;
constexpr int64_t kPanel = 16;  // W rows per repacked panel: two 8-lane groups

using Panel = int8_blocks::Panel<8>;

// One 4-byte dot product per lane: codes w (unsigned, or signed for Q8_0) times x bytes.
template <DType T>
__m256i dot4(__m256i w, __m256i xb, __m256i ones) {
  if constexpr (T == DType::Q8_0)
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(xb, w)), ones);
  else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, xb), ones);
}

template <DType T, int R>
void micro_kernel(const Q8Rows& x, int64_t r0, const Panel& p, int64_t c0, int64_t cols, const float* bias, float* y,
                  int64_t out) {
  constexpr int H = T == DType::Q6_K ? 2 : 1;
  const int offset = int8_blocks::offset_of(T, true);
  const int64_t nb = p.nb;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* w0 = p.q.data() + size_t(b * 8 * 32);
    const uint8_t* w1 = p.q.data() + size_t((nb + b) * 8 * 32);
    for (int h = 0; h < H; ++h) {
      __m256i isum[R][2];
      for (int r = 0; r < R; ++r) isum[r][0] = isum[r][1] = _mm256_setzero_si256();
      for (int j = 8 / H * h; j < 8 / H * (h + 1); ++j) {
        const __m256i wa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + 32 * j));
        const __m256i wb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w1 + 32 * j));
        for (int r = 0; r < R; ++r) {
          int32_t group;
          std::memcpy(&group, x.q.data() + size_t(r0 + r) * size_t(x.k) + size_t(32 * b + 4 * j), 4);
          const __m256i xb = _mm256_set1_epi32(group);
          isum[r][0] = _mm256_add_epi32(isum[r][0], dot4<T>(wa, xb, ones));
          isum[r][1] = _mm256_add_epi32(isum[r][1], dot4<T>(wb, xb, ones));
        }
      }
      for (int r = 0; r < R; ++r) {
        const int32_t* qs = x.qsum16.data() + size_t(r0 + r) * size_t(2 * nb) + size_t(2 * b);
        const __m256i corr = _mm256_set1_epi32(offset * (H == 2 ? qs[h] : qs[0] + qs[1]));
        const __m256 dx = _mm256_set1_ps(x.scale[size_t((r0 + r) * nb + b)]);
        for (int g = 0; g < 2; ++g) {
          const __m256 s = _mm256_mul_ps(_mm256_loadu_ps(p.scale.data() + size_t(((g * nb + b) * H + h) * 8)), dx);
          acc[r][g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(isum[r][g], corr)), s, acc[r][g]);
        }
      }
    }
    if constexpr (T == DType::Q4_K)
      for (int r = 0; r < R; ++r) {
        const __m256 xs = _mm256_set1_ps(x.sum[size_t((r0 + r) * nb + b)]);
        for (int g = 0; g < 2; ++g)
          acc[r][g] = _mm256_fnmadd_ps(_mm256_loadu_ps(p.min.data() + size_t((g * nb + b) * 8)), xs, acc[r][g]);
      }
  }
  for (int g = 0; g < 2; ++g) {
    const int64_t lanes = std::clamp<int64_t>(cols - 8 * g, 0, 8);
    for (int r = 0; r < R; ++r) {
      alignas(32) float v[8];
      _mm256_store_ps(v, acc[r][g]);
      float* dst = y + (r0 + r) * out + c0 + 8 * g;
      for (int64_t l = 0; l < lanes; ++l) dst[l] = v[l] + (bias ? bias[c0 + 8 * g + l] : 0.0f);
    }
  }
}

}  // namespace

void int8_matmul_avx2(const Q8Rows& x, DType t, const uint8_t* w, int64_t out, const float* bias, float* y,
                      int threads) {
  const int64_t nb = x.k / 32;
  int8_blocks::with_block_type(t, "int8_matmul_avx2", [&](auto type) {
    constexpr DType T = decltype(type)::value;
    const int64_t row_bytes = int64_t(dtype_row_bytes(T, x.k));
    int8_blocks::for_each_panel<Panel>(
        out, kPanel, threads, [&](int64_t c0, int64_t cols, Panel& p) { int8_blocks::repack<T, true, 8>(w, row_bytes, nb, c0, cols, p); },
        [&](const Panel& p, int64_t c0, int64_t cols) {
          int64_t r = 0;
          for (; r + kR <= x.n; r += kR) micro_kernel<T, kR>(x, r, p, c0, cols, bias, y, out);
          for (; r < x.n; ++r) micro_kernel<T, 1>(x, r, p, c0, cols, bias, y, out);
        });
  });
}

}  // namespace unmask::ops::qmatmul_detail
