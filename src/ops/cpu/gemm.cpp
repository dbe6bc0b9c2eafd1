// ops/cpu/gemm.cpp — the scalar gemm_f32 (the reference for the AVX-512 kernel) and dispatch.
#include "ops/cpu/gemm.h"

#include <cmath>

namespace unmask::ops {

void gemm_f32(Isa isa, const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (isa == Isa::kAvx512) return gemm_detail::gemm_f32_avx512(g);
#pragma omp parallel for schedule(static) if (g.m * g.n * g.k > (int64_t(1) << 20))
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      float acc = g.accumulate ? g.c[i * g.ldc + j] : 0.0f;  // one chain from C (or 0), as the kernel
      for (int64_t p = 0; p < g.k; ++p) acc = std::fma(g.a[i * g.a_rs + p * g.a_cs], g.b[p * g.ldb + j], acc);
      g.c[i * g.ldc + j] = acc;
    }
}

}  // namespace unmask::ops
