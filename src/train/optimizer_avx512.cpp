// train/optimizer_avx512.cpp — AdamW's per-element update, 16 floats at a time, with the
// scalar span's operations in its order (train/optimizer.h: AdamWSpan), so bitwise equal.
#include "ops/cpu/immintrin_quiet.h"
#include "train/optimizer.h"

namespace unmask::train::optimizer_detail {

void adamw_span_avx512(const AdamWSpan& s) {
  const __m512 decay = _mm512_set1_ps(s.decay), b2 = _mm512_set1_ps(s.b2);
  const __m512 one_minus_b1 = _mm512_set1_ps(1.0f - s.b1), one_minus_b2 = _mm512_set1_ps(1.0f - s.b2);
  const __m512 step_size = _mm512_set1_ps(s.step_size), sqrt_bc2 = _mm512_set1_ps(s.sqrt_bc2);
  const __m512 eps = _mm512_set1_ps(s.eps);
  for (int64_t i = 0; i < s.n; i += 16) {
    const __mmask16 k = s.n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (s.n - i)) - 1);
    const __m512 g = _mm512_maskz_loadu_ps(k, s.grads + i);
    __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, s.params + i), decay);
    __m512 m = _mm512_maskz_loadu_ps(k, s.m + i);
    m = _mm512_add_ps(m, _mm512_mul_ps(one_minus_b1, _mm512_sub_ps(g, m)));
    __m512 v = _mm512_mul_ps(b2, _mm512_maskz_loadu_ps(k, s.v + i));
    v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_mul_ps(one_minus_b2, g), g));
    const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(v), sqrt_bc2), eps);
    p = _mm512_sub_ps(p, _mm512_div_ps(_mm512_mul_ps(step_size, m), denom));
    _mm512_mask_storeu_ps(s.params + i, k, p);
    _mm512_mask_storeu_ps(s.m + i, k, m);
    _mm512_mask_storeu_ps(s.v + i, k, v);
  }
}

}  // namespace unmask::train::optimizer_detail
