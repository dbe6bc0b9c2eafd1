// ops/cpu/matmul_avx2.cpp — AVX2 + FMA matmul kernels, for CPUs without AVX-512.
//
// Same dot-product form as matmul_avx512.cpp, on 16 ymm registers: R=3 rows of x by
// C=4 rows of W, 12 accumulators + 3 x vectors + 1 W vector. BF16 weights are widened
// to f32 in registers (zero-extend to 32 bits, shift left 16: exact) and multiplied
// with x pre-rounded to bf16 values (held as f32), so products stay exact as in the
// AVX-512 VDPBF16PS path. Blocking as in the AVX-512 file (k blocks, column blocks).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/cpu/matmul.h"

namespace unmask::ops::matmul_detail {

namespace {

constexpr int kR = 3;
constexpr int kC = 4;
// [3, 512] f32 x block = 6 KiB of L1; W block [128, 512] = 256 KiB (f32) of L2.
constexpr int64_t kKc = 512;
constexpr int64_t kOc = 128;

inline __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
  // hadd pairs within 128-bit halves: [a01 a23 b01 b23 | a45 a67 b45 b67] etc.
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// Weight loaders: 8 consecutive weights as f32; the _tail forms read only n < 8 of them.
inline __m256 load_w(const float* w) { return _mm256_loadu_ps(w); }
inline __m256 load_w(const uint16_t* w) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
template <typename T>
inline __m256 load_w_tail(const T* w, int64_t n) {
  T buf[8] = {};  // zero padding: missing lanes multiply to 0
  std::memcpy(buf, w, size_t(n) * sizeof(T));
  return load_w(buf);
}
inline __m256 load_x_tail(const float* x, int64_t n) {
  float buf[8] = {};
  std::memcpy(buf, x, size_t(n) * sizeof(float));
  return _mm256_loadu_ps(buf);
}

// y[R, C] (+)= x[R, 0:kc] . w[C, 0:kc]^T, x f32 (bf16-rounded for bf16 weights).
template <int R, int C, typename T>
void tile(const float* x, int64_t ldx, const T* w, int64_t ldw, int64_t kc, float* y, int64_t ldy,
          const float* bias, bool first) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= kc; i += 8) {
    __m256 xv[R];
    for (int r = 0; r < R; ++r) xv[r] = _mm256_loadu_ps(x + r * ldx + i);
    for (int c = 0; c < C; ++c) {
      const __m256 wv = load_w(w + c * ldw + i);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  if (i < kc) {
    __m256 xv[R];
    for (int r = 0; r < R; ++r) xv[r] = load_x_tail(x + r * ldx + i, kc - i);
    for (int c = 0; c < C; ++c) {
      const __m256 wv = load_w_tail(w + c * ldw + i, kc - i);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  const __m256 zero = _mm256_setzero_ps();
  for (int r = 0; r < R; ++r) {
    alignas(16) float s[4];
    _mm_store_ps(s, reduce4(acc[r][0], C > 1 ? acc[r][C > 1 ? 1 : 0] : zero, C > 2 ? acc[r][C > 2 ? 2 : 0] : zero,
                            C > 3 ? acc[r][C > 3 ? 3 : 0] : zero));
    for (int c = 0; c < C; ++c) {
      float* dst = y + r * ldy + c;
      *dst = (first ? (bias ? bias[c] : 0.0f) : *dst) + s[c];
    }
  }
}

template <typename T>
using TileFn = void (*)(const float*, int64_t, const T*, int64_t, int64_t, float*, int64_t, const float*, bool);

template <typename T>
struct TileTable {
  TileFn<T> fn[kR][kC];
  TileTable() { fill<0>(); }
  template <int I>
  void fill() {
    if constexpr (I < kR * kC) {
      fn[I / kC][I % kC] = tile<I / kC + 1, I % kC + 1, T>;
      fill<I + 1>();
    }
  }
};

// Row stride of the private x copy: an odd number of cache lines, so the R rows of an
// x block do not alias one L1 set when k is a power of two (see matmul_avx512.cpp).
int64_t padded_ld(int64_t k) {
  int64_t lines = (k * 4 + 63) / 64;
  if (lines % 2 == 0) ++lines;
  return lines * 16;
}

template <typename T>
void run(const Problem& p, const T* w) {
  static const TileTable<T> tiles;
  const int64_t ldx = padded_ld(p.k);
  std::vector<float> xc(size_t(p.n * ldx));  // x, rounded to bf16 values for BF16 weights
#pragma omp parallel num_threads(p.threads)
  {
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    for (int64_t r = p.n * tid / nt; r < p.n * (tid + 1) / nt; ++r)
      for (int64_t i = 0; i < p.k; ++i)
        xc[size_t(r * ldx + i)] = p.dtype == DType::BF16 ? round_to_bf16(p.x[r * p.k + i]) : p.x[r * p.k + i];
#pragma omp barrier
    // Columns split over threads in kC-wide tiles; rows when outputs are few.
    const int64_t col_tiles = (p.out + kC - 1) / kC;
    int64_t r0 = 0, r1 = p.n, c0 = 0, c1 = p.out;
    if (col_tiles >= int64_t(nt) * 8 || p.n < int64_t(nt) * kR) {
      c0 = std::min(p.out, col_tiles * tid / nt * kC);
      c1 = std::min(p.out, col_tiles * (tid + 1) / nt * kC);
    } else {
      const int64_t row_tiles = (p.n + kR - 1) / kR;
      r0 = std::min(p.n, row_tiles * tid / nt * kR);
      r1 = std::min(p.n, row_tiles * (tid + 1) / nt * kR);
    }
    for (int64_t cb = c0; cb < c1; cb += kOc) {
      const int64_t ce = std::min(c1, cb + kOc);
      for (int64_t kb = 0; kb < p.k; kb += kKc) {
        const int64_t kc = std::min(kKc, p.k - kb);
        for (int64_t r = r0; r < r1; r += kR) {
          const int64_t rr = std::min<int64_t>(kR, r1 - r);
          for (int64_t c = cb; c < ce; c += kC) {
            const int64_t cc = std::min<int64_t>(kC, ce - c);
            tiles.fn[rr - 1][cc - 1](xc.data() + r * ldx + kb, ldx, w + c * p.k + kb, p.k, kc,
                                     p.y + r * p.out + c, p.out, p.bias ? p.bias + c : nullptr, kb == 0);
          }
        }
      }
    }
  }
}

}  // namespace

void matmul_avx2(const Problem& p) {
  if (p.dtype == DType::F32)
    run(p, static_cast<const float*>(p.w));
  else
    run(p, static_cast<const uint16_t*>(p.w));
}

}  // namespace unmask::ops::matmul_detail
