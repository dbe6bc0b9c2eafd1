// ops/cpu/qmatmul_avx512.cpp — Q8_0 / Q4_0 / Q4_K / Q6_K weights x int8 activations with
// AVX-512 VNNI.
//
// x is quantized per 32-value block to signed int8 (Q8Rows, qmatmul.h). VPDPBUSD
// multiplies unsigned by signed bytes, so the weights enter unsigned: u = v + o with the
// type's offset o (Q8_0 128, Q4_0 8, Q4_K 0, Q6_K 32 — for the 4- and 6-bit types u is
// just the stored code), and the offset comes back out per x block:
//   sum_i v_i xq_i = sum_i u_i xq_i - o * sum_i xq_i      (exact in int32)
// where sum xq is per 16 values in Q8Rows, computed once per x row, not per weight row.
// Scales: w = scale * v - min (quant::Int8Block), scale per 32 values (per 16 for Q6_K).
//
// Each thread repacks one panel of 32 W rows at a time (two groups of 16) so that one
// zmm holds, for 16 consecutive rows, the same 4 bytes of a block: lane l of
// panel[g][b][j] = bytes 4j..4j+3 of block b of row 16g + l (j = 0..7). The repack decodes
// a block of 16 rows into 16 x 32 bytes with 256-bit integer ops and transposes them as
// 4-byte groups (two 8 x 8 transposes), so it costs a few instructions per 32 weights.
// Then one VPDPBUSD of a broadcast 4-byte group of x against a panel vector advances 16
// outputs at once; per block (or half block for Q6_K) and x row the int32 sums get their
// scales once, per lane:
//   acc[r][g] += float(isum - o * xsum_q[r]) * (scale[g][b] * dx[r][b])  (- min[g][b] * xsum[r][b])
// and the results are 16 contiguous outputs: no horizontal reductions. The micro-kernel
// keeps R=6 x rows by 2 groups: 12 int32 + 12 f32 accumulators + 2 W vectors.
// The panel (32 rows of a 2048-value row: ~72 KiB) stays in L2 while all x rows pass.
#include "ops/cpu/immintrin_quiet.h"
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ops/cpu/qmatmul.h"
#include "unmask/error.h"
#include "unmask/quant.h"

namespace unmask::ops::qmatmul_detail {

namespace {

constexpr int kR = 6;
constexpr int64_t kPanel = 32;  // W rows per repacked panel: two 16-lane groups

int offset_of(DType t) {
  switch (t) {
    case DType::Q8_0: return 128;
    case DType::Q4_0: return 8;
    case DType::Q6_K: return 32;
    default: return 0;  // Q4_K: codes 0..15 are the values
  }
}

// H = scales per 32-value block: 2 for Q6_K (16-value sub-blocks), else 1.
struct Panel {
  int64_t nb = 0;
  std::vector<uint8_t> q;    // [2][nb][8][64]
  std::vector<float> scale;  // [2][nb][H][16]
  std::vector<float> min;    // [2][nb][16] (Q4_K)
};

// The 32 unsigned codes u = v + offset of block b of one row, and its scales / min.
template <DType T>
__m256i decode_block(const uint8_t* row, int64_t b, float* scale, float* min) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  if constexpr (T == DType::Q8_0) {
    const uint8_t* blk = row + b * 34;
    uint16_t d;
    std::memcpy(&d, blk, 2);
    scale[0] = _cvtsh_ss(d);
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)), _mm256_set1_epi8(char(0x80)));
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

// Rows [c0, c0 + rows) of W (rows <= 32; missing rows are zero) into the panel layout.
template <DType T>
void repack(const uint8_t* w, int64_t row_bytes, int64_t nb, int64_t c0, int64_t rows, Panel& p) {
  constexpr int H = T == DType::Q6_K ? 2 : 1;
  if (p.nb != nb) {
    p.nb = nb;
    p.q.resize(size_t(2 * nb * 8 * 64));
    p.scale.resize(size_t(2 * nb * H * 16));
    p.min.resize(size_t(2 * nb * 16));
  }
  for (int g = 0; g < 2; ++g) {
    const int64_t live = std::clamp<int64_t>(rows - 16 * g, 0, 16);
    for (int64_t b = 0; b < nb; ++b) {
      __m256i codes[16], cols[2][8];
      float sc[16][2] = {}, mn[16] = {};
      for (int l = 0; l < 16; ++l)
        codes[l] = l < live ? decode_block<T>(w + size_t(c0 + 16 * g + l) * size_t(row_bytes), b, sc[l], &mn[l])
                            : _mm256_setzero_si256();
      transpose8x8_epi32(codes, cols[0]);
      transpose8x8_epi32(codes + 8, cols[1]);
      uint8_t* dst = p.q.data() + size_t((g * nb + b) * 8 * 64);
      for (int j = 0; j < 8; ++j)
        _mm512_storeu_si512(dst + 64 * j, _mm512_inserti64x4(_mm512_castsi256_si512(cols[0][j]), cols[1][j], 1));
      for (int h = 0; h < H; ++h)
        for (int l = 0; l < 16; ++l) p.scale[size_t(((g * nb + b) * H + h) * 16 + l)] = sc[l][h];
      if constexpr (T == DType::Q4_K) std::copy_n(mn, 16, p.min.data() + size_t((g * nb + b) * 16));
    }
  }
}

// y[r0 .. r0+R, c0 .. c0+cols) for one panel; cols <= 32 (masked stores past it).
template <DType T, int R>
void micro_kernel(const Q8Rows& x, int64_t r0, const Panel& p, int64_t c0, int64_t cols, const float* bias, float* y,
                  int64_t out) {
  constexpr int H = T == DType::Q6_K ? 2 : 1;
  const int offset = offset_of(T);
  const int64_t nb = p.nb;
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const int8_t* xrow[R];
  const float *xs[R], *xsum[R];
  const int32_t* xqsum[R];
  for (int r = 0; r < R; ++r) {
    xrow[r] = x.q.data() + size_t(r0 + r) * size_t(x.k);
    xs[r] = x.scale.data() + size_t(r0 + r) * size_t(nb);
    xsum[r] = x.sum.data() + size_t(r0 + r) * size_t(nb);
    xqsum[r] = x.qsum16.data() + size_t(r0 + r) * size_t(2 * nb);
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* w0 = p.q.data() + size_t(b * 8 * 64);
    const uint8_t* w1 = p.q.data() + size_t((nb + b) * 8 * 64);
    for (int h = 0; h < H; ++h) {
      __m512i isum[R][2];
      for (int r = 0; r < R; ++r) isum[r][0] = isum[r][1] = _mm512_setzero_si512();
      for (int j = 8 / H * h; j < 8 / H * (h + 1); ++j) {
        const __m512i wa = _mm512_loadu_si512(w0 + j * 64), wb = _mm512_loadu_si512(w1 + j * 64);
        for (int r = 0; r < R; ++r) {
          int32_t group;
          std::memcpy(&group, xrow[r] + 32 * b + 4 * j, 4);
          const __m512i xb = _mm512_set1_epi32(group);
          isum[r][0] = _mm512_dpbusd_epi32(isum[r][0], wa, xb);
          isum[r][1] = _mm512_dpbusd_epi32(isum[r][1], wb, xb);
        }
      }
      __m512i corr[R];
      for (int r = 0; r < R; ++r) {
        const int32_t qs = H == 2 ? xqsum[r][2 * b + h] : xqsum[r][2 * b] + xqsum[r][2 * b + 1];
        corr[r] = _mm512_set1_epi32(offset * qs);
      }
      for (int g = 0; g < 2; ++g) {
        const __m512 dw = _mm512_loadu_ps(p.scale.data() + size_t(((g * nb + b) * H + h) * 16));
        for (int r = 0; r < R; ++r) {
          const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(xs[r][b]));
          acc[r][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[r][g], corr[r])), s, acc[r][g]);
        }
      }
    }
    if constexpr (T == DType::Q4_K)
      for (int g = 0; g < 2; ++g) {
        const __m512 mv = _mm512_loadu_ps(p.min.data() + size_t((g * nb + b) * 16));
        for (int r = 0; r < R; ++r) acc[r][g] = _mm512_fnmadd_ps(mv, _mm512_set1_ps(xsum[r][b]), acc[r][g]);
      }
  }
  for (int g = 0; g < 2; ++g) {
    const int64_t lanes = std::clamp<int64_t>(cols - 16 * g, 0, 16);
    if (lanes == 0) continue;
    const __mmask16 m = __mmask16((1u << lanes) - 1);
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias + c0 + 16 * g) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + (r0 + r) * out + c0 + 16 * g, m, _mm512_add_ps(acc[r][g], bv));
  }
}

template <DType T>
void run(const Q8Rows& x, const uint8_t* w, int64_t out, const float* bias, float* y, int threads) {
  const int64_t nb = x.k / 32, row_bytes = int64_t(dtype_row_bytes(T, x.k));
  const int64_t panels = (out + kPanel - 1) / kPanel;
#pragma omp parallel num_threads(threads)
  {
    Panel p;
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < panels; ++u) {
      const int64_t c0 = u * kPanel, cols = std::min(kPanel, out - c0);
      repack<T>(w, row_bytes, nb, c0, cols, p);
      int64_t r = 0;
      for (; r + kR <= x.n; r += kR) micro_kernel<T, kR>(x, r, p, c0, cols, bias, y, out);
      for (; r < x.n; ++r) micro_kernel<T, 1>(x, r, p, c0, cols, bias, y, out);
    }
  }
}

}  // namespace

void int8_matmul_avx512(const Q8Rows& x, DType t, const uint8_t* w, int64_t out, const float* bias, float* y,
                        int threads) {
  switch (t) {
    case DType::Q8_0: return run<DType::Q8_0>(x, w, out, bias, y, threads);
    case DType::Q4_0: return run<DType::Q4_0>(x, w, out, bias, y, threads);
    case DType::Q4_K: return run<DType::Q4_K>(x, w, out, bias, y, threads);
    case DType::Q6_K: return run<DType::Q6_K>(x, w, out, bias, y, threads);
    default: throw Error("int8_matmul_avx512: " + std::string(dtype_name(t)) + " is not Q8_0, Q4_0, Q4_K or Q6_K");
  }
}

}  // namespace unmask::ops::qmatmul_detail
