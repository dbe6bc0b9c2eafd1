// ops/cpu/int8_blocks_avx2.h — 256-bit decoding of Q8_0 / Q4_0 / Q4_K / Q6_K blocks into
// the int8 codes the int8 matmul kernels (qmatmul_avx512.cpp, qmatmul_avx2.cpp) repack, and
// the 8 x 8 dword transpose that turns rows of codes into panel vectors. AVX2 + F16C only,
// so both kernel files include it; everything has internal linkage (each file compiles its
// own copy with its own target flags — an inline definition shared between them could let
// the linker pick the AVX-512 build for the AVX2 path). Owns nothing.
#pragma once
#include "ops/cpu/immintrin_quiet.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "unmask/error.h"
#include "unmask/quant.h"
#include "unmask/tensor.h"

namespace unmask::ops::int8_blocks {
namespace {

// The code offset o: weight code u = v + o, so sum v x = sum u x - o sum x. Q8_0 is signed
// when the kernel multiplies signed codes (AVX2: |v| x sign(x, v)).
int offset_of(DType t, bool signed_q8) {
  switch (t) {
    case DType::Q8_0: return signed_q8 ? 0 : 128;
    case DType::Q4_0: return 8;
    case DType::Q6_K: return 32;
    default: return 0;  // Q4_K: codes 0..15 are the values
  }
}

// The 32 codes of block b of one row, and its scales (scale[1] for Q6_K) / min (Q4_K):
// unsigned u = v + offset_of(T), except Q8_0 with kSignedQ8 (the AVX2 kernel): v itself.
template <DType T, bool kSignedQ8>
__m256i decode_block(const uint8_t* row, int64_t b, float* scale, float* min) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  if constexpr (T == DType::Q8_0) {
    const uint8_t* blk = row + b * 34;
    uint16_t d;
    std::memcpy(&d, blk, 2);
    scale[0] = _cvtsh_ss(d);
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    return kSignedQ8 ? v : _mm256_xor_si256(v, _mm256_set1_epi8(char(0x80)));
  } else if constexpr (T == DType::Q4_0) {
    const uint8_t* blk = row + b * 18;
    uint16_t d;
    std::memcpy(&d, blk, 2);
    scale[0] = _cvtsh_ss(d);
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);  // values 0..15 | 16..31
    return _mm256_and_si256(both, low4);
  } else if constexpr (T == DType::Q4_K) {
    const uint8_t* blk = row + (b / 8) * 144;
    const int s = int(b % 8);
    uint16_t d, dmin;
    std::memcpy(&d, blk, 2);
    std::memcpy(&dmin, blk + 2, 2);
    uint8_t sc, m;
    quant::q4_k_scale_min(blk + 4, s, &sc, &m);
    scale[0] = _cvtsh_ss(d) * float(sc);
    *min = _cvtsh_ss(dmin) * float(m);
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * (s / 2)));
    return _mm256_and_si256(s % 2 ? _mm256_srli_epi16(q, 4) : q, low4);
  } else {  // Q6_K: ql[128], qh[64], scales[16], d
    const uint8_t* blk = row + (b / 8) * 210;
    const int s = int(b % 8), h = s / 4, r = s % 4;
    uint16_t d;
    std::memcpy(&d, blk + 208, 2);
    const float df = _cvtsh_ss(d);
    const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
    scale[0] = df * float(sc[2 * s]);
    scale[1] = df * float(sc[2 * s + 1]);
    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32 * (r & 1)));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
    const __m256i lo = _mm256_and_si256(r >> 1 ? _mm256_srli_epi16(ql, 4) : ql, low4);
    const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * r)), _mm256_set1_epi8(3));
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
  }
}

// in[i] = 8 dwords of row i (i < 8) -> out[j] = dword j of rows 0..7.
void transpose8x8_epi32(const __m256i* in, __m256i* out) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(in[i], in[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(in[i], in[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // u[0..3]: rows 0-3, dwords {0,4}, {1,5}, {2,6}, {3,7} per 128-bit lane; u[4..7]: rows 4-7.
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x20);
    out[j + 4] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x31);
  }
}

// One thread's repacked panel of 2 x L weight rows (L = 16 lanes for the zmm kernel, 8 for
// the ymm one), as two groups of L: lane l of q[g][b][j] (4 bytes) = codes 4j..4j+3 of
// block b of row L*g + l; H = scales per block (2 for Q6_K's 16-value sub-blocks).
template <int L>
struct Panel {
  int64_t nb = 0;
  std::vector<uint8_t> q;    // [2][nb][8][4 L]
  std::vector<float> scale;  // [2][nb][H][L]
  std::vector<float> min;    // [2][nb][L] (Q4_K)
};

// Rows [c0, c0 + rows) of W (rows <= 2L; missing rows are zero) into the panel: 8 rows'
// codes of a block at a time, transposed as 4-byte groups.
template <DType T, bool kSignedQ8, int L>
void repack(const uint8_t* w, int64_t row_bytes, int64_t nb, int64_t c0, int64_t rows, Panel<L>& p) {
  constexpr int H = T == DType::Q6_K ? 2 : 1;
  if (p.nb != nb) {
    p.nb = nb;
    p.q.resize(size_t(2 * nb * 8 * 4 * L));
    p.scale.resize(size_t(2 * nb * H * L));
    p.min.resize(size_t(2 * nb * L));
  }
  for (int g = 0; g < 2; ++g) {
    const int64_t live = std::clamp<int64_t>(rows - L * g, 0, L);
    for (int64_t b = 0; b < nb; ++b) {
      float sc[L][2] = {}, mn[L] = {};
      uint8_t* dst = p.q.data() + size_t((g * nb + b) * 8 * 4 * L);
      for (int half = 0; half < L / 8; ++half) {
        __m256i codes[8], cols[8];
        for (int l = 0; l < 8; ++l) {
          const int lane = 8 * half + l;
          codes[l] = lane < live ? decode_block<T, kSignedQ8>(w + size_t(c0 + L * g + lane) * size_t(row_bytes), b,
                                                              sc[lane], &mn[lane])
                                 : _mm256_setzero_si256();
        }
        transpose8x8_epi32(codes, cols);
        for (int j = 0; j < 8; ++j)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 4 * L * j + 32 * half), cols[j]);
      }
      for (int h = 0; h < H; ++h)
        for (int l = 0; l < L; ++l) p.scale[size_t(((g * nb + b) * H + h) * L + l)] = sc[l][h];
      if constexpr (T == DType::Q4_K) std::copy_n(mn, L, p.min.data() + size_t((g * nb + b) * L));
    }
  }
}

// f(std::integral_constant<DType, T>{}) for the block type t (Q8_0, Q4_0, Q4_K, Q6_K), so a
// kernel is instantiated per type; other types throw naming `who`.
template <class F>
void with_block_type(DType t, const char* who, F f) {
  switch (t) {
    case DType::Q8_0: return f(std::integral_constant<DType, DType::Q8_0>{});
    case DType::Q4_0: return f(std::integral_constant<DType, DType::Q4_0>{});
    case DType::Q4_K: return f(std::integral_constant<DType, DType::Q4_K>{});
    case DType::Q6_K: return f(std::integral_constant<DType, DType::Q6_K>{});
    default: throw Error(std::string(who) + ": " + std::string(dtype_name(t)) + " is not Q8_0, Q4_0, Q4_K or Q6_K");
  }
}

// The kernels' shared driver: panels of panel_rows W rows taken dynamically by `threads`
// threads, each repacked into the thread's own Panel (repack(c0, cols, panel)), then
// multiplied with every x row (rows(panel, c0, cols)).
template <class Panel, class Repack, class Rows>
void for_each_panel(int64_t out, int64_t panel_rows, int threads, Repack repack, Rows rows) {
  const int64_t panels = (out + panel_rows - 1) / panel_rows;
#pragma omp parallel num_threads(threads)
  {
    Panel p;
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < panels; ++u) {
      const int64_t c0 = u * panel_rows, cols = std::min(panel_rows, out - c0);
      repack(c0, cols, p);
      rows(p, c0, cols);
    }
  }
}

}  // namespace
}  // namespace unmask::ops::int8_blocks
