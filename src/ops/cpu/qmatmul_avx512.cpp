// ops/cpu/qmatmul_avx512.cpp — Q8_0 weights x int8 activations with AVX-512 VNNI.
//
// x is quantized per 32-value block (Q8Rows, qmatmul.h) and stored biased to unsigned
// (q + 128) because VPDPBUSD multiplies unsigned by signed bytes; the bias is removed
// per block with 128 * sum(w), precomputed at repack (exact in int32: |sum| < 2^19).
//
// Each thread repacks one panel of 32 W rows at a time (two groups of 16) so that one
// zmm holds, for 16 consecutive rows, the same 4 bytes of a block: lane l of
// panel[g][b][j] = bytes 4j..4j+3 of block b of row 16g + l (j = 0..7), next to the
// rows' block scales d[g][b][16] and corrections corr[g][b][16]. Then one VPDPBUSD of a
// broadcast 4-byte group of x against it advances 16 outputs at once, so per block and
// x row the 8 VPDPBUSDs accumulate in int32 and the scales apply once, per lane:
//   acc[r][g] += float(isum - corr) * (d[g][b] * dx[r][b])
// and the results are 16 contiguous outputs: no horizontal reductions. The micro-kernel
// keeps R=6 x rows by 2 groups: 12 int32 + 12 f32 accumulators + 2 W vectors.
// The panel (32 rows of a 2048-value row: ~70 KiB) stays in L2 while all x rows pass.
#include "ops/cpu/immintrin_quiet.h"
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/cpu/qmatmul.h"
#include "unmask/quant.h"

namespace unmask::ops::qmatmul_detail {

namespace {

constexpr int kR = 6;
constexpr int64_t kPanel = 32;  // W rows per repacked panel: two 16-lane groups

struct Panel {
  int64_t nb = 0;
  std::vector<uint8_t> q;  // [2][nb][8][64]
  std::vector<float> d;     // [2][nb][16]
  std::vector<int32_t> corr;  // [2][nb][16]
};

// Rows [c0, c0 + rows) of W (rows <= 32; missing rows are zero) into the panel layout.
void repack(const uint8_t* w, int64_t nb, int64_t c0, int64_t rows, Panel& p) {
  if (p.nb != nb || rows < kPanel) {  // sized once per call; zero lanes for missing rows
    p.nb = nb;
    p.q.assign(size_t(2 * nb * 8 * 64), 0);
    p.d.assign(size_t(2 * nb * 16), 0.0f);
    p.corr.assign(size_t(2 * nb * 16), 0);
  }
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t g = i / 16, l = i % 16;
    const uint8_t* row = w + size_t(c0 + i) * size_t(nb) * sizeof(quant::BlockQ8_0);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = row + size_t(b) * sizeof(quant::BlockQ8_0);
      uint8_t* dst = p.q.data() + size_t((g * nb + b) * 8 * 64 + l * 4);
      for (int j = 0; j < 8; ++j) std::memcpy(dst + j * 64, blk + 2 + 4 * j, 4);
      int32_t sum = 0;
      for (int t = 0; t < 32; ++t) sum += int8_t(blk[2 + t]);
      uint16_t d;
      std::memcpy(&d, blk, 2);
      p.d[size_t((g * nb + b) * 16 + l)] = _cvtsh_ss(d);
      p.corr[size_t((g * nb + b) * 16 + l)] = 128 * sum;
    }
  }
}

// y[r0 .. r0+R, c0 .. c0+cols) for one panel; cols <= 32 (masked stores past it).
template <int R>
void micro_kernel(const Q8Rows& x, int64_t r0, const Panel& p, int64_t c0, int64_t cols, const float* bias, float* y,
                  int64_t out) {
  const int64_t nb = p.nb;
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const uint8_t* xrow[R];
  const float* xs[R];
  for (int r = 0; r < R; ++r) {
    xrow[r] = x.q.data() + size_t(r0 + r) * size_t(x.k);
    xs[r] = x.scale.data() + size_t(r0 + r) * size_t(nb);
  }
  for (int64_t b = 0; b < nb; ++b) {
    __m512i isum[R][2];
    for (int r = 0; r < R; ++r) isum[r][0] = isum[r][1] = _mm512_setzero_si512();
    const uint8_t* w0 = p.q.data() + size_t(b * 8 * 64);
    const uint8_t* w1 = p.q.data() + size_t((nb + b) * 8 * 64);
    for (int j = 0; j < 8; ++j) {
      const __m512i wa = _mm512_loadu_si512(w0 + j * 64), wb = _mm512_loadu_si512(w1 + j * 64);
      for (int r = 0; r < R; ++r) {
        int32_t group;
        std::memcpy(&group, xrow[r] + 32 * b + 4 * j, 4);
        const __m512i xb = _mm512_set1_epi32(group);
        isum[r][0] = _mm512_dpbusd_epi32(isum[r][0], xb, wa);
        isum[r][1] = _mm512_dpbusd_epi32(isum[r][1], xb, wb);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m512i corr = _mm512_loadu_si512(p.corr.data() + size_t((h * nb + b) * 16));
      const __m512 dw = _mm512_loadu_ps(p.d.data() + size_t((h * nb + b) * 16));
      for (int r = 0; r < R; ++r) {
        const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(xs[r][b]));
        acc[r][h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[r][h], corr)), s, acc[r][h]);
      }
    }
  }
  for (int h = 0; h < 2; ++h) {
    const int64_t lanes = std::clamp<int64_t>(cols - 16 * h, 0, 16);
    if (lanes == 0) continue;
    const __mmask16 m = __mmask16((1u << lanes) - 1);
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias + c0 + 16 * h) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + (r0 + r) * out + c0 + 16 * h, m, _mm512_add_ps(acc[r][h], bv));
  }
}

}  // namespace

void q8_0_matmul_avx512(const Q8Rows& x, const uint8_t* w, int64_t out, const float* bias, float* y, int threads) {
  const int64_t n = x.n, nb = x.k / 32;
  const int64_t panels = (out + kPanel - 1) / kPanel;
#pragma omp parallel num_threads(threads)
  {
    Panel p;
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < panels; ++u) {
      const int64_t c0 = u * kPanel, cols = std::min(kPanel, out - c0);
      repack(w, nb, c0, cols, p);
      int64_t r = 0;
      for (; r + kR <= n; r += kR) micro_kernel<kR>(x, r, p, c0, cols, bias, y, out);
      for (; r < n; ++r) micro_kernel<1>(x, r, p, c0, cols, bias, y, out);
    }
  }
}

}  // namespace unmask::ops::qmatmul_detail
