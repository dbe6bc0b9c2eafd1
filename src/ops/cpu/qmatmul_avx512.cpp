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

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/cpu/int8_blocks_avx2.h"
#include "ops/cpu/qmatmul.h"
#include "unmask/quant.h"

namespace unmask::ops::qmatmul_detail {

namespace {

constexpr int kR = 6;
constexpr int64_t kPanel = 32;  // W rows per repacked panel: two 16-lane groups

using Panel = int8_blocks::Panel<16>;

// y[r0 .. r0+R, c0 .. c0+cols) for one panel; cols <= 32 (masked stores past it).
template <DType T, int R>
void micro_kernel(const Q8Rows& x, int64_t r0, const Panel& p, int64_t c0, int64_t cols, const float* bias, float* y,
                  int64_t out) {
  constexpr int H = T == DType::Q6_K ? 2 : 1;
  const int offset = int8_blocks::offset_of(T, false);
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

}  // namespace

void int8_matmul_avx512(const Q8Rows& x, DType t, const uint8_t* w, int64_t out, const float* bias, float* y,
                        int threads) {
  const int64_t nb = x.k / 32;
  int8_blocks::with_block_type(t, "int8_matmul_avx512", [&](auto type) {
    constexpr DType T = decltype(type)::value;
    const int64_t row_bytes = int64_t(dtype_row_bytes(T, x.k));
    int8_blocks::for_each_panel<Panel>(
        out, kPanel, threads, [&](int64_t c0, int64_t cols, Panel& p) { int8_blocks::repack<T, false, 16>(w, row_bytes, nb, c0, cols, p); },
        [&](const Panel& p, int64_t c0, int64_t cols) {
          int64_t r = 0;
          for (; r + kR <= x.n; r += kR) micro_kernel<T, kR>(x, r, p, c0, cols, bias, y, out);
          for (; r < x.n; ++r) micro_kernel<T, 1>(x, r, p, c0, cols, bias, y, out);
        });
  });
}

}  // namespace unmask::ops::qmatmul_detail
