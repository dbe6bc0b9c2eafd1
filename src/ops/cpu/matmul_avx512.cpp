// ops/cpu/matmul_avx512.cpp — AVX-512 matmul kernels (f32 FMA, bf16 VDPBF16PS).
//
// Dot-product form on the file layout, no repack. The micro-kernel takes R rows of x
// and C rows of W (C consecutive outputs), both contiguous along k, and keeps R*C zmm
// accumulators (R=6, C=4: 24 accumulators + 6 x vectors + 1 W vector = 31 of 32 zmm).
// Per k step it loads 6 x vectors and 4 W vectors for 24 FMAs / VDPBF16PSs. After a k
// block the accumulators are reduced horizontally (4 at a time into one xmm) and added
// into y[R, C].
//
// One call may hold several weights of the same x (matmul_multi: q/k/v, gate/up), its
// "parts"; x is copied once and the units of all parts share one parallel region.
// Blocking, per work unit (a range of at most OC output columns of one part, or of rows
// when there are few outputs; threads take units dynamically):
//   for each column block of OC outputs       (W block [OC, KC] stays in L2)
//     for each k block of KC                  (the first block writes, later ones add)
//       for each row block of R rows          (x block [R, KC] in L1, or L2 when KC > 1024)
//         for each C outputs in the block     (W [C, KC] streams from L2)
//           micro-kernel -> a contiguous [R, C] scratch tile
//     copy the column block's scratch tiles into y
// so W is read from memory once per call, each W element is loaded from L2 once per R
// rows, and x is re-read from L2/L3 once per column block. x is first copied with a
// padded row stride (rounded to bf16 for BF16 weights) and y is written through the
// scratch tiles, because power-of-two strides (k or out = 2048) made the R rows of an x
// or y tile alias one L1 set; that cost 25% on [2048 x 2048] before the change.
// F16 weights (GGUF) take the f32 kernel with each W vector converted as it is loaded
// (VCVTPH2PS, exact; 4% faster than decoding blocks first, and half the bytes; on Zen 4
// the conversion does not compete with the FMAs: 24 FMAs + 4 VCVTPH2PS per step from
// registers ran at the FMA peak in an isolated loop). Block-type
// weights take the f32 path on one decoded [OC, k] block of whole rows per thread at a
// time (decode_avx512.cpp), so the decode streams through memory.
#include "ops/cpu/immintrin_quiet.h"
#include "ops/cpu/bf16_avx512.h"
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "ops/cpu/matmul.h"
#include "ops/cpu/qmatmul.h"

namespace unmask::ops::matmul_detail {

namespace {

constexpr int kR = 6;
constexpr int kC = 4;

struct Blocking {
  int64_t kc;  // k block, in elements
  int64_t oc;  // outputs per column block
};

// KC: all of k in one block up to 4096 (the 1B shapes' 2048), longer rows in equal blocks
// of at most 4096 (multiples of 32; 5632 -> 2 x 2816), the same for every type. One block
// means one horizontal reduction per output; the [6, KC] x block (48 KiB f32 at 2048)
// then streams from L2 instead of staying in L1, and measured no slower for it: on the 1B
// shapes at 128 rows (A/B in one process, min of 11 runs) F16 ran 2-5% faster on one thread
// than with KC 1024, level to 5% faster on two; F32 level. OC keeps the W block [OC, KC]
// within half of a 1 MiB L2 at 2048: 128 outputs of 2-byte weights, 64 of f32. F16 and F32
// share KC so an F16 product is bit for bit the F32 product of the decoded weights (same
// sums in the same order).
int64_t k_block(int64_t k) {
  constexpr int64_t kMax = 4096;
  const int64_t blocks = std::max<int64_t>(1, (k + kMax - 1) / kMax);
  return ((k + blocks - 1) / blocks + 31) / 32 * 32;
}
Blocking blocking_for(DType dtype, int64_t k) { return {k_block(k), dtype == DType::F32 ? 64 : 128}; }

// Decoded weights (F16, block types) are decoded whole rows at a time, so the decode
// reads the file as one sequential stream (rows of a column block are adjacent); OC
// shrinks to keep the decoded [OC, k] f32 block at 256 KiB. Decoding [128, 512] pieces
// instead read short strided runs of each row and took twice as long at one query row.
Blocking decoded_blocking(int64_t k) {
  const int64_t rows = (int64_t(256) << 10) / (4 * std::max<int64_t>(k, 1));
  return {k_block(k), std::clamp<int64_t>(rows / kC * kC, kC, 128)};  // the F32 sums
}

// Sums of each of four accumulators: {sum(a), sum(b), sum(c), sum(d)}.
inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
  // Per 128-bit lane: ab = [a0+a2, b0+b2, a1+a3, b1+b3], cd likewise.
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  // Per lane: [a, b, c, d] partial sums.
  const __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// Adds the R x C accumulator sums into y (or writes sum + bias on the first k block).
template <int R, int C>
inline void store_tile(__m512 (&acc)[R][C], float* y, int64_t ldy, const float* bias, bool first) {
  const __mmask8 m = __mmask8((1u << C) - 1);
  const __m512 zero = _mm512_setzero_ps();
  __m128 base_bias = _mm_setzero_ps();
  if (first && bias) base_bias = _mm_maskz_loadu_ps(m, bias);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m128 s = reduce4(acc[r][0], C > 1 ? acc[r][C > 1 ? 1 : 0] : zero,
                             C > 2 ? acc[r][C > 2 ? 2 : 0] : zero, C > 3 ? acc[r][C > 3 ? 3 : 0] : zero);
    const __m128 base = first ? base_bias : _mm_maskz_loadu_ps(m, y + r * ldy);
    _mm_mask_storeu_ps(y + r * ldy, m, _mm_add_ps(base, s));
  }
}

// 16 weights as f32: plain loads for F32, VCVTPH2PS (exact) for F16 read from the file.
inline __m512 load_w(const float* w) { return _mm512_loadu_ps(w); }
inline __m512 load_w(const uint16_t* w) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w))); }
inline __m512 load_w_masked(__mmask16 m, const float* w) { return _mm512_maskz_loadu_ps(m, w); }
inline __m512 load_w_masked(__mmask16 m, const uint16_t* w) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w)); }

// f32 micro-kernel: y[R, C] (+)= x[R, 0:kc] . w[C, 0:kc]^T, W f32 or F16 (TW = uint16_t).
// F16 products are those of the decoded f32 weights in the same order, so both give the
// same bits.
template <int R, int C, typename TW>
void tile_f32(const float* x, int64_t ldx, const TW* w, int64_t ldw, int64_t kc, float* y, int64_t ldy,
              const float* bias, bool first) {
  __m512 acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= kc; i += 16) {
    __m512 xv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) xv[r] = _mm512_loadu_ps(x + r * ldx + i);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const __m512 wv = load_w(w + c * ldw + i);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  if (i < kc) {  // masked tail: lanes past kc load as 0 and never touch memory
    const __mmask16 m = __mmask16((1u << (kc - i)) - 1);
    __m512 xv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) xv[r] = _mm512_maskz_loadu_ps(m, x + r * ldx + i);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const __m512 wv = load_w_masked(m, w + c * ldw + i);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  store_tile<R, C>(acc, y, ldy, bias, first);
}

// bf16 micro-kernel: x and w hold bf16 pairs along k; VDPBF16PS multiplies 32 pairs
// per instruction into 16 f32 lanes.
template <int R, int C>
void tile_bf16(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t kc, float* y,
               int64_t ldy, const float* bias, bool first) {
  __m512 acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= kc; i += 32) {
    __m512bh xv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) xv[r] = (__m512bh)_mm512_loadu_si512(x + r * ldx + i);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(w + c * ldw + i);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], xv[r], wv);
    }
  }
  if (i < kc) {  // masked tail: missing pairs are 0 x 0
    const __mmask32 m = __mmask32((1u << (kc - i)) - 1);
    __m512bh xv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) xv[r] = (__m512bh)_mm512_maskz_loadu_epi16(m, x + r * ldx + i);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w + c * ldw + i);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], xv[r], wv);
    }
  }
  store_tile<R, C>(acc, y, ldy, bias, first);
}

template <typename TX, typename TW>
using TileFn = void (*)(const TX*, int64_t, const TW*, int64_t, int64_t, float*, int64_t, const float*, bool);

// Micro-kernels for every (rows, cols) edge shape, indexed [rows - 1][cols - 1].
template <typename TX, typename TW, template <int, int> class Pick>
struct TileTable {
  TileFn<TX, TW> fn[kR][kC];
  TileTable() { fill<0>(); }
  template <int I>
  void fill() {
    if constexpr (I < kR * kC) {
      fn[I / kC][I % kC] = Pick<I / kC + 1, I % kC + 1>::fn;
      fill<I + 1>();
    }
  }
};
template <int R, int C>
struct PickF32 {
  static constexpr TileFn<float, float> fn = tile_f32<R, C, float>;
};
template <int R, int C>
struct PickF16 {
  static constexpr TileFn<float, uint16_t> fn = tile_f32<R, C, uint16_t>;
};
template <int R, int C>
struct PickBf16 {
  static constexpr TileFn<uint16_t, uint16_t> fn = tile_bf16<R, C>;
};

// Rounds x[0:count] to bf16 (round-to-nearest-even, NaN kept quiet) exactly as
// unmask::f32_to_bf16 does, 16 values at a time.
void convert_row_bf16(const float* x, int64_t count, uint16_t* out) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) bf16x::store(out + i, _mm512_loadu_ps(x + i));
  for (; i < count; ++i) out[i] = f32_to_bf16(x[i]);
}

// Work units handed to threads dynamically (a thread that the OS or a noisy neighbour
// slows down takes fewer; a static split made 2-thread n=64 runs wait on the slower
// thread, 15-25% below their best). A unit is a range of output columns of one part over
// all rows, at most one column block wide, or, when outputs are few and rows many, a
// range of rows over all columns of a part. Column units shrink towards the end of the
// list (each about 1/(3 x threads) of the columns left, down to 16 columns), so the
// thread that finishes first waits for a short last unit: with equal units that wait was
// half a 128-column unit per call, 3% of a 1B forward at 2 threads.
struct Range {
  int part;
  int64_t r0, r1, c0, c1;
};
std::vector<Range> plan_units(std::span<const Problem> parts, int threads, const Blocking& b) {
  const int64_t n = parts[0].n;
  int64_t total_cols = 0;
  for (const Problem& q : parts) total_cols += q.out;
  const int64_t want = int64_t(threads) * 4;
  const int64_t col_tiles = (total_cols + kC - 1) / kC;
  std::vector<Range> units;
  if (col_tiles >= int64_t(threads) * 8 || n < int64_t(threads) * kR) {
    const int64_t step = std::min(b.oc, std::max<int64_t>(1, col_tiles / want) * kC);
    const int64_t tail_min = std::min<int64_t>(step, 4 * kC);
    int64_t left = total_cols;
    for (int i = 0; i < int(parts.size()); ++i)
      for (int64_t c = 0; c < parts[size_t(i)].out;) {
        const int64_t guided = (left / (3 * int64_t(threads)) + kC - 1) / kC * kC;
        const int64_t width = std::min(parts[size_t(i)].out - c, std::clamp(guided, tail_min, step));
        units.push_back({i, 0, n, c, c + width});
        c += width;
        left -= width;
      }
    return units;
  }
  const int64_t row_tiles = (n + kR - 1) / kR;
  const int64_t step = std::max<int64_t>(1, row_tiles * int64_t(parts.size()) / want) * kR;
  for (int i = 0; i < int(parts.size()); ++i)
    for (int64_t r = 0; r < n; r += step) units.push_back({i, r, std::min(n, r + step), 0, parts[size_t(i)].out});
  return units;
}

// Row stride (elements) for the private copy of x: a whole, odd number of cache lines,
// so the R rows of an x block fall in different L1 sets. With the raw stride a
// power-of-two k (2048 f32 = 8 KiB) puts all rows of the block in the same set and
// they evict each other.
int64_t padded_ld(int64_t k, int64_t elt) {
  int64_t lines = (k * elt + 63) / 64;
  if (lines % 2 == 0) ++lines;
  return lines * 64 / elt;
}

// Computes y over this thread's range. Tiles accumulate in `scratch`, one contiguous
// [kR, kC] tile per (row block, column tile) of the current column block, and are
// copied into y after the last k block: y rows are `out` apart, and for power-of-two
// `out` the R rows of a y tile would alias one L1 set, evicting the x block.
// `p` is one part of the call (its own W, bias and y; x, n and k are shared).
// `w_block(p, cb, ce, kb)` gives p's W[cb:ce, kb:kb+kc] as {pointer to row cb, row stride}:
// the file itself for F32 / BF16 / F16, a freshly decoded f32 block otherwise.
template <typename TX, typename TW, template <int, int> class Pick, typename WBlock>
void run_range(const TileTable<TX, TW, Pick>& tiles, const TX* x, int64_t ldx, const WBlock& w_block, const Problem& p,
               const Range& rg, const Blocking& b, float* scratch) {
  const int64_t row_blocks = (rg.r1 - rg.r0 + kR - 1) / kR;
  for (int64_t cb = rg.c0; cb < rg.c1; cb += b.oc) {
    const int64_t ce = std::min(rg.c1, cb + b.oc);
    const int64_t col_tiles = (ce - cb + kC - 1) / kC;
    for (int64_t kb = 0; kb < p.k; kb += b.kc) {
      const int64_t kc = std::min(b.kc, p.k - kb);
      const auto [wb, ldw] = w_block(p, cb, ce, kb);
      for (int64_t i = 0; i < row_blocks; ++i) {
        const int64_t r = rg.r0 + i * kR, rr = std::min<int64_t>(kR, rg.r1 - r);
        for (int64_t j = 0; j < col_tiles; ++j) {
          const int64_t c = cb + j * kC, cc = std::min<int64_t>(kC, ce - c);
          tiles.fn[rr - 1][cc - 1](x + r * ldx + kb, ldx, wb + (c - cb) * ldw, ldw, kc,
                                   scratch + (i * col_tiles + j) * kR * kC, kC, p.bias ? p.bias + c : nullptr,
                                   kb == 0);
        }
      }
    }
    for (int64_t i = 0; i < row_blocks; ++i) {
      const int64_t r = rg.r0 + i * kR, rr = std::min<int64_t>(kR, rg.r1 - r);
      for (int64_t j = 0; j < col_tiles; ++j) {
        const int64_t c = cb + j * kC, cc = std::min<int64_t>(kC, ce - c);
        const float* t = scratch + (i * col_tiles + j) * kR * kC;
        const __mmask8 m = __mmask8((1u << cc) - 1);
        if (p.round_bf16)
          for (int64_t a = 0; a < rr; ++a)
            _mm_mask_storeu_ps(p.y + (r + a) * p.out + c, m, bf16x::round(_mm_loadu_ps(t + a * kC)));
        else
          for (int64_t a = 0; a < rr; ++a) _mm_mask_storeu_ps(p.y + (r + a) * p.out + c, m, _mm_loadu_ps(t + a * kC));
      }
    }
  }
}

}  // namespace

void matmul_avx512(const Problem& p) { matmul_avx512(std::span<const Problem>(&p, 1)); }

void matmul_avx512(std::span<const Problem> parts) {
  static const TileTable<float, float, PickF32> f32_tiles;
  static const TileTable<float, uint16_t, PickF16> f16_tiles;
  static const TileTable<uint16_t, uint16_t, PickBf16> bf16_tiles;
  const Problem& p = parts[0];  // x, n, k, dtype, threads: the same in every part
  const bool bf16 = p.dtype == DType::BF16, f16 = p.dtype == DType::F16;
  const bool decoded = p.dtype != DType::F32 && !bf16 && !f16;  // block types: f32 blocks
  const Blocking b = decoded ? decoded_blocking(p.k) : blocking_for(p.dtype, p.k);
  // Private copy of x with a padded row stride (and rounded to bf16 for BF16 weights).
  const int64_t ldx = padded_ld(p.k, bf16 ? 2 : 4);
  // Uninitialised (new T[]), not std::vector: every element is written before use, and
  // zero-filling them showed up as a few % of a forward at 64 rows.
  const std::unique_ptr<float[]> xf(bf16 ? nullptr : new float[size_t(p.n * ldx)]);
  const std::unique_ptr<uint16_t[]> xb(bf16 ? new uint16_t[size_t(p.n * ldx)] : nullptr);
#pragma omp parallel num_threads(p.threads)
  {
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    for (int64_t r = p.n * tid / nt; r < p.n * (tid + 1) / nt; ++r) {
      if (bf16)
        convert_row_bf16(p.x + r * p.k, p.k, xb.get() + r * ldx);
      else
        std::memcpy(xf.get() + r * ldx, p.x + r * p.k, size_t(p.k) * 4);
    }
    const std::vector<Range> units = plan_units(parts, nt, b);
    // Scratch for the largest unit: its rows x at most one column block, in [kR, kC] tiles.
    int64_t tiles = 0;
    for (const Range& u : units)
      tiles = std::max(tiles, (u.r1 - u.r0 + kR - 1) / kR * ((std::min(u.c1 - u.c0, b.oc) + kC - 1) / kC));
    const std::unique_ptr<float[]> scratch(new float[size_t(tiles * kR * kC)]);
    // Decoded weights: one [OC, k] f32 block per thread (256 KiB at most, the L2 block the
    // f32 kernel is tiled for), decoded once per column block when its first k block is
    // asked for and then used by every row block, so the decode cost is 1/n of the multiply's.
    const std::unique_ptr<float[]> wdec(decoded ? new float[size_t(b.oc * p.k)] : nullptr);
    const size_t row_bytes = decoded ? dtype_row_bytes(p.dtype, p.k) : 0;
    auto file_block_f32 = [&](const Problem& q, int64_t cb, int64_t, int64_t kb) {
      return std::pair<const float*, int64_t>{static_cast<const float*>(q.w) + cb * q.k + kb, q.k};
    };
    auto file_block_16 = [&](const Problem& q, int64_t cb, int64_t, int64_t kb) {  // BF16 / F16
      return std::pair<const uint16_t*, int64_t>{static_cast<const uint16_t*>(q.w) + cb * q.k + kb, q.k};
    };
    auto decoded_block = [&](const Problem& q, int64_t cb, int64_t ce, int64_t kb) {
      if (kb == 0)
        for (int64_t c = cb; c < ce; ++c)
          qmatmul_detail::decode_row_avx512(q.dtype, static_cast<const uint8_t*>(q.w) + size_t(c) * row_bytes,
                                            wdec.get() + (c - cb) * q.k, q.k);
      return std::pair<const float*, int64_t>{wdec.get() + kb, q.k};
    };
#pragma omp barrier
#pragma omp for schedule(dynamic, 1) nowait
    for (size_t i = 0; i < units.size(); ++i) {
      const Range& rg = units[i];
      const Problem& q = parts[size_t(rg.part)];
      if (bf16)
        run_range(bf16_tiles, xb.get(), ldx, file_block_16, q, rg, b, scratch.get());
      else if (f16)
        run_range(f16_tiles, xf.get(), ldx, file_block_16, q, rg, b, scratch.get());
      else if (decoded)
        run_range(f32_tiles, xf.get(), ldx, decoded_block, q, rg, b, scratch.get());
      else
        run_range(f32_tiles, xf.get(), ldx, file_block_f32, q, rg, b, scratch.get());
    }
  }
}

}  // namespace unmask::ops::matmul_detail
