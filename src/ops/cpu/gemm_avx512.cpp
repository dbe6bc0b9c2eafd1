// ops/cpu/gemm_avx512.cpp — packed outer-product f32 GEMM (see gemm.h).
//
// Work: column panels of 64 (threads take panels dynamically). Per panel and k block of
// 256: B[p0:p0+256, j0:j0+64] is packed k-major into a 64 KiB buffer (zero beyond n, so
// edge panels need no special kernel), then every 6-row block of A runs the micro-kernel:
// 24 accumulators = a 6 x 64 tile of C, loaded from C (after the first k block, or when
// accumulating) so each C element is ONE f32 FMA chain in p order — the scalar loop's.
#include "ops/cpu/immintrin_quiet.h"
#include <omp.h>

#include <algorithm>
#include <vector>

#include "ops/cpu/gemm.h"
#include "ops/cpu/outer_tile_avx512.h"

namespace unmask::ops::gemm_detail {

namespace {

constexpr int kMR = 6;
constexpr int64_t kNR = 64;
constexpr int64_t kKC = 256;

// C[i0 : i0+R, j0 : j0+nr] (+)= A[i0 : i0+R, p0 : p0+kc] · packed B [kc, 64].
template <int R>
void kernel(const GemmArgs& g, int64_t i0, int64_t j0, int64_t nr, int64_t p0, int64_t kc, const float* bp,
            bool load_c) {
  __mmask16 m[4];
  outer_tile::width_masks(nr, m);
  float* c = g.c + i0 * g.ldc + j0;
  __m512 acc[R][4];
  outer_tile::load<R>(acc, load_c ? c : nullptr, g.ldc, m);
  const float* a = g.a + i0 * g.a_rs + p0 * g.a_cs;
  outer_tile::accumulate<R>(acc, m, kc, [&](int r, int64_t p) { return a[r * g.a_rs + p * g.a_cs]; },
                            [&](int64_t p) { return bp + p * kNR; });
  outer_tile::store<R>(acc, c, g.ldc, m);
}

using KernelFn = void (*)(const GemmArgs&, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, bool);
constexpr KernelFn kKernels[kMR] = {kernel<1>, kernel<2>, kernel<3>, kernel<4>, kernel<5>, kernel<6>};

}  // namespace

void gemm_f32_avx512(const GemmArgs& g) {
  const int64_t panels = (g.n + kNR - 1) / kNR;
  const double flops = 2.0 * double(g.m) * double(g.n) * double(g.k);
  const int threads = omp_in_parallel() ? 1 : int(std::clamp<double>(flops / 4e6 + 1, 1, omp_get_max_threads()));
#pragma omp parallel num_threads(threads)
  {
    // The packed B panel, 64 KiB per thread, kept across calls (the trainer's attention
    // calls this six times per head and layer).
    thread_local std::vector<float> packed(size_t(kKC * kNR));
    float* const bp = packed.data();
#pragma omp for schedule(dynamic, 1)
    for (int64_t panel = 0; panel < panels; ++panel) {
      const int64_t j0 = panel * kNR, nr = std::min(kNR, g.n - j0);
      if (g.k == 0 && !g.accumulate)
        for (int64_t i = 0; i < g.m; ++i) std::fill_n(g.c + i * g.ldc + j0, nr, 0.0f);
      for (int64_t p0 = 0; p0 < g.k; p0 += kKC) {
        const int64_t kc = std::min(kKC, g.k - p0);
        __mmask16 m[4];
        outer_tile::width_masks(nr, m);
        for (int64_t p = 0; p < kc; ++p)
          for (int v = 0; v < 4; ++v)
            _mm512_storeu_ps(bp + p * kNR + 16 * v,
                             _mm512_maskz_loadu_ps(m[v], g.b + (p0 + p) * g.ldb + j0 + 16 * v));
        const bool load_c = p0 > 0 || g.accumulate;
        for (int64_t i0 = 0; i0 < g.m; i0 += kMR) {
          const int64_t mr = std::min<int64_t>(kMR, g.m - i0);
          kKernels[mr - 1](g, i0, j0, nr, p0, kc, bp, load_c);
        }
      }
    }
  }
}

}  // namespace unmask::ops::gemm_detail
