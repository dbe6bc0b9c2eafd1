// ops/cpu/vec_math_avx512.cpp — exp_f32 and SwiGLU, 16 floats at a time. Each lane does
// exactly the float64 operations of the scalar exp_f32 (vec_math.cpp), so the results
// are bitwise equal to it; the tail is handled with masked loads / stores.
#include "ops/cpu/bf16_avx512.h"
#include "ops/cpu/immintrin_quiet.h"
#include "ops/cpu/outer_tile_avx512.h"
#include "ops/cpu/vec_math.h"

#include <algorithm>
#include <cmath>

namespace unmask::ops::vec_math_detail {

namespace {

// e^x for 8 doubles with |x| <= ~700 (so 2^n stays a normal double); see exp_f32.
__m512d exp_pd_core(__m512d x) {
  const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(0x1.62e42fefa39efp-1), x);
  r = _mm512_fnmadd_pd(n, _mm512_set1_pd(0x1.abc9e3b39803fp-56), r);
  __m512d p = _mm512_set1_pd(1.0 / 39916800.0);
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 3628800.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 362880.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 40320.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 5040.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 720.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 120.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 24.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 6.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.5));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  return _mm512_scalef_pd(p, n);  // p * 2^n, exact (as ldexp)
}

// e^x for 8 doubles holding f32 values, clamped to [-110, 100] first (the f32 result is
// 0 / inf beyond). min/max return their SECOND operand when either is NaN, so NaN lanes survive.
__m512d exp_pd(__m512d x) {
  x = _mm512_min_pd(_mm512_set1_pd(100.0), x);
  x = _mm512_max_pd(_mm512_set1_pd(-110.0), x);
  return exp_pd_core(x);
}

__m512 exp_ps(__m512 x) {
  const __m512d lo = exp_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)));
  const __m512d hi = exp_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))));
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
}

__mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1); }

}  // namespace

void exp_shifted_avx512(const float* x, float shift, float* y, int64_t n) {
  const __m512 s = _mm512_set1_ps(shift);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s);
    _mm512_mask_storeu_ps(y + i, m, exp_ps(v));
  }
}

float max_value_avx512(const float* x, int64_t n) {
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
  __m512 m = neg_inf;
  for (int64_t i = 0; i < n; i += 16) {
    // max_ps returns its second operand when either is NaN: a NaN x keeps m.
    m = _mm512_max_ps(_mm512_mask_loadu_ps(neg_inf, tail_mask(n - i), x + i), m);
  }
  return _mm512_reduce_max_ps(m);
}

namespace {
// Sum of the 16 partials in vec_math.cpp's combine_partials order: (lo[j] + hi[j]), j = 0..7.
double combine_partials(__m512d lo, __m512d hi) {
  alignas(64) double t[8];
  _mm512_store_pd(t, _mm512_add_pd(lo, hi));
  double total = 0;
  for (double v : t) total += v;
  return total;
}
}  // namespace

double exp_shifted_sum_avx512(const float* x, float shift, float* y, int64_t n) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(m, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s)));
    _mm512_mask_storeu_ps(y + i, m, e);
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  return combine_partials(lo, hi);
}

double sum_squares_avx512(const float* x, int64_t n) {
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
    const __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d b = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    // Product then sum, two roundings, as the scalar loop (no FMA there).
    lo = _mm512_add_pd(lo, _mm512_mul_pd(a, a));
    hi = _mm512_add_pd(hi, _mm512_mul_pd(b, b));
  }
  return combine_partials(lo, hi);
}

ExpMoments exp_moments_avx512(const float* x, int64_t n, double m) {
  const __m512d mv = _mm512_set1_pd(m), floor = _mm512_set1_pd(-700.0);
  __m512d sum = _mm512_setzero_pd(), centered = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 8) {
    const __mmask8 tail = n - i >= 8 ? __mmask8(0xff) : __mmask8((1u << (n - i)) - 1);
    const __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(tail, x + i)), mv);
    // Lanes past the tail, below e^-700 or -inf / NaN contribute nothing.
    const __mmask8 live = _mm512_mask_cmp_pd_mask(tail, d, floor, _CMP_GE_OQ);
    const __m512d e = _mm512_maskz_mov_pd(live, exp_pd_core(_mm512_maskz_mov_pd(live, d)));
    sum = _mm512_add_pd(sum, e);
    centered = _mm512_fmadd_pd(e, _mm512_maskz_mov_pd(live, d), centered);
  }
  return ExpMoments{_mm512_reduce_add_pd(sum), _mm512_reduce_add_pd(centered)};
}

namespace {

// R output rows x one chunk of up to 64 columns [c0, c0 + 64): 4R accumulators in
// registers across all keys, each value row chunk loaded once per R rows.
template <int R>
void weighted_rows_tile(const WeightedRows& a, int64_t r0, int64_t c0) {
  __mmask16 m[4];
  outer_tile::width_masks(a.d - c0, m);
  __m512 acc[R][4];
  outer_tile::load<R>(acc, nullptr, 0, m);
  const float* p = a.p + r0 * a.ldp;
  outer_tile::accumulate<R>(acc, m, a.nk, [&](int r, int64_t j) { return p[r * a.ldp + j]; },
                            [&](int64_t j) { return a.rows[j] + c0; });
  outer_tile::store<R>(acc, a.out + r0 * a.ldo + c0, a.ldo, m);
}

}  // namespace

void weighted_row_sums_avx512(const WeightedRows& a) {
  constexpr int kRows = 6;  // 24 accumulators + 4 value vectors + 1 broadcast of 32 zmm
  for (int64_t c0 = 0; c0 < a.d; c0 += 64) {
    int64_t r = 0;
    for (; r + kRows <= a.nr; r += kRows) weighted_rows_tile<kRows>(a, r, c0);
    switch (a.nr - r) {
      case 5: weighted_rows_tile<5>(a, r, c0); break;
      case 4: weighted_rows_tile<4>(a, r, c0); break;
      case 3: weighted_rows_tile<3>(a, r, c0); break;
      case 2: weighted_rows_tile<2>(a, r, c0); break;
      case 1: weighted_rows_tile<1>(a, r, c0); break;
      default: break;
    }
  }
}

void sigmoid_avx512(const float* x, float* y, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, x + i)));
    _mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(one, _mm512_add_ps(one, e)));
  }
}

void silu_mul_avx512(float* gate, const float* up, int64_t n, bool bf16) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
    __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
    if (bf16) s = bf16x::round(s);
    __m512 r = _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i));
    if (bf16) r = bf16x::round(r);
    _mm512_mask_storeu_ps(gate + i, m, r);
  }
}

}  // namespace unmask::ops::vec_math_detail
