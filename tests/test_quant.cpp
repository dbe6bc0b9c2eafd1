// ggml block formats: hand-computed blocks, quantize -> dequantize error bounds on
// random data, and the quantized matmul against the scalar reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "ops/cpu/matmul.h"
#include "ops/cpu/qmatmul.h"
#include "unmask/error.h"
#include "unmask/quant.h"

namespace unmask {
namespace {

using quant::BlockQ4_0;
using quant::BlockQ4_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;

template <class Block>
std::vector<float> dequant(DType t, const Block& b, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  quant::dequantize_row(t, &b, y.data(), n);
  return y;
}

TEST(QuantF16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);                  // largest half
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                  // halfway to 2^16: rounds to inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);     // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);     // half of it: ties to even (0)
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even mantissa
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even mantissa (up)
  EXPECT_EQ(f32_to_f16(1.0f / 3), 0x3555);
  EXPECT_EQ(f32_to_f16(NAN) & 0x7c00, 0x7c00);
  EXPECT_NE(f32_to_f16(NAN) & 0x3ff, 0);
  for (uint32_t h = 0; h < 0x10000; ++h) {  // every finite half survives the round trip
    if ((h & 0x7c00) == 0x7c00) continue;
    ASSERT_EQ(f32_to_f16(f16_to_f32(uint16_t(h))), h) << std::hex << h;
    const uint16_t h16 = uint16_t(h);
    float via_row;  // quant's own (bit rebias) conversion agrees with tensor.h's
    quant::dequantize_row(DType::F16, &h16, &via_row, 1);
    ASSERT_EQ(via_row, f16_to_f32(uint16_t(h))) << std::hex << h;
  }
}

TEST(QuantBlocks, Q8_0HandComputed) {
  BlockQ8_0 b{};
  b.d = 0x3800;  // 0.5
  b.qs[0] = 3;
  b.qs[1] = -4;
  b.qs[31] = 127;
  const auto y = dequant(DType::Q8_0, b, 32);
  EXPECT_EQ(y[0], 1.5f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[31], 63.5f);
}

TEST(QuantBlocks, Q4_0HandComputed) {
  BlockQ4_0 b{};
  b.d = 0x3400;  // 0.25
  std::memset(b.qs, 0x88, sizeof b.qs);  // every value q = 8 -> 0
  b.qs[0] = 0x9a;   // value 0: low nibble 10 -> +2 steps; value 16: high nibble 9 -> +1 step
  b.qs[15] = 0x0f;  // value 15: 15 -> +7 steps; value 31: 0 -> -8 steps
  const auto y = dequant(DType::Q4_0, b, 32);
  EXPECT_EQ(y[0], 0.5f);
  EXPECT_EQ(y[16], 0.25f);
  EXPECT_EQ(y[15], 1.75f);
  EXPECT_EQ(y[31], -2.0f);
  EXPECT_EQ(y[1], 0.0f);
}

TEST(QuantBlocks, Q4_KHandComputed) {
  BlockQ4_K b{};
  b.d = 0x3c00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  // Sub-block 0: scale 3, min 2. Sub-block 1: scale 1 (+ top bits of sub-block 5's scale),
  // min 0 (+ top bits of sub-block 5's min). Sub-block 5: scale 37 = 0b10'0101, min 19 = 0b01'0011.
  b.scales[0] = 3;
  b.scales[4] = 2;
  b.scales[1] = uint8_t((2 << 6) | 1);  // 37 >> 4 = 2 in the top bits
  b.scales[5] = uint8_t(1 << 6);        // 19 >> 4 = 1 in the top bits
  b.scales[9] = 0x35;                   // low nibble: 37 & 15 = 5; high nibble: 19 & 15 = 3
  uint8_t sc, m;
  quant::q4_k_scale_min(b.scales, 5, &sc, &m);
  EXPECT_EQ(sc, 37);
  EXPECT_EQ(m, 19);
  b.qs[0] = 0x47;   // value 0 (sub-block 0): q 7; value 32 (sub-block 1): q 4
  b.qs[64] = 0xa0;  // value 128 (sub-block 4): q 0; value 160 (sub-block 5): q 10
  const auto y = dequant(DType::Q4_K, b, 256);
  EXPECT_EQ(y[0], 1.0f * 3 * 7 - 0.5f * 2);      // 20
  EXPECT_EQ(y[32], 1.0f * 1 * 4 - 0.5f * 0);     // 4
  EXPECT_EQ(y[160], 1.0f * 37 * 10 - 0.5f * 19);  // 360.5
  EXPECT_EQ(y[1], -1.0f);                          // q 0 in sub-block 0: -dmin * 2
}

TEST(QuantBlocks, Q6_KHandComputed) {
  BlockQ6_K b{};
  b.d = 0x3800;  // 0.5
  for (auto& s : b.scales) s = 1;
  b.scales[0] = 2;
  b.scales[9] = -3;
  b.ql[0] = 0x05;   // value 0: low 4 bits 5; value 64: low 4 bits 0
  b.qh[0] = 0x02;   // value 0: high 2 bits 2 (q = 37); values 32/64/96 of the half: 0
  b.ql[80] = 0x0f;  // second half, l = 16, quarter 0 -> value 144 (sub-block 9): low 15
  b.qh[48] = 0x03;  // its high 2 bits 3 -> q = 63
  const auto y = dequant(DType::Q6_K, b, 256);
  EXPECT_EQ(y[0], 0.5f * 2 * (37 - 32));   // 5
  EXPECT_EQ(y[64], 0.5f * 1 * (0 - 32));   // -16
  EXPECT_EQ(y[144], 0.5f * -3 * (63 - 32));  // -46.5
}

// Random rows: normal values with a per-32-chunk scale spread over 3 decades and a few
// outliers, so blocks of very different ranges (and sub-block scales) occur.
std::vector<float> random_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> decade(-2.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  float scale = 1;
  for (int64_t i = 0; i < n; ++i) {
    if (i % 32 == 0) scale = std::pow(10.0f, decade(rng));
    x[size_t(i)] = scale * normal(rng) * (i % 97 == 5 ? 8.0f : 1.0f);
  }
  return x;
}

// Checks every value against the bound of quant.h for its (sub-)block, reading the
// stored scales back from the bytes. `bound(bytes, i)` gives the bound of value i.
template <class Bound>
void check_round_trip(DType t, int64_t n, Bound bound, double max_rel_rms) {
  const std::vector<float> x = random_row(n, 1234 + uint32_t(t));
  std::vector<uint8_t> q(dtype_row_bytes(t, n));
  quant::quantize_row(t, x.data(), q.data(), n);
  std::vector<float> y(static_cast<size_t>(n));
  quant::dequantize_row(t, q.data(), y.data(), n);
  double err2 = 0, x2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::fabs(double(x[size_t(i)]) - double(y[size_t(i)]));
    // 1e-6 relative slack: the float arithmetic of quantize / dequantize itself.
    ASSERT_LE(e, bound(q.data(), i) + 1e-6 * std::fabs(x[size_t(i)])) << dtype_name(t) << " value " << i;
    err2 += e * e;
    x2 += double(x[size_t(i)]) * double(x[size_t(i)]);
  }
  EXPECT_LT(std::sqrt(err2 / x2), max_rel_rms) << dtype_name(t);
}

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

TEST(QuantRoundTrip, Q8_0WithinHalfStep) {
  // 0.57 steps: half a step of rounding, plus d stored in f16 (relative error <= 2^-11)
  // lets |x / d| reach 127 * (1 + 2^-11) = 127.06 before the clamp at 127.
  // Relative RMS: a step is ~ amax/127, uniform rounding error step/sqrt(12): ~1%.
  check_round_trip(DType::Q8_0, 7 * 32, [](const uint8_t* q, int64_t i) { return 0.57 * f16_at(q + (i / 32) * 34); },
                   0.02);
}

TEST(QuantRoundTrip, Q4_0WithinOneStep) {
  // One step: the value opposite the block's extreme maps to q = 16 and clamps to 15
  // (1.01: f16 rounding of d). 16 levels: ~10% relative RMS expected, 20% allowed.
  check_round_trip(DType::Q4_0, 9 * 32,
                   [](const uint8_t* q, int64_t i) { return 1.01 * std::fabs(f16_at(q + (i / 32) * 18)); }, 0.2);
}

TEST(QuantRoundTrip, Q4_KWithinHalfStepPlusMin) {
  // S/2 for rounding, + dmin: the stored min is rounded up by < dmin, which can push the
  // sub-block's top value past q = 15. ~8% relative RMS expected (16 levels per 32 values).
  check_round_trip(DType::Q4_K, 3 * 256,
                   [](const uint8_t* q, int64_t i) {
                     const uint8_t* b = q + (i / 256) * 144;
                     uint8_t sc, m;
                     quant::q4_k_scale_min(b + 4, int(i % 256) / 32, &sc, &m);
                     return 0.5 * f16_at(b) * sc + f16_at(b + 2);
                   },
                   0.2);
}

TEST(QuantRoundTrip, Q6_KWithinOneStep) {
  // One step (|S|), as Q4_0: the clamp at +31. 64 levels: ~2.5% relative RMS expected.
  check_round_trip(DType::Q6_K, 5 * 256,
                   [](const uint8_t* q, int64_t i) {
                     const uint8_t* b = q + (i / 256) * 210;
                     const int8_t sc = int8_t(b[192 + (i % 256) / 16]);
                     return std::fabs(f16_at(b + 208) * float(sc));
                   },
                   0.06);
}

TEST(QuantRoundTrip, F16AndBF16RoundToNearest) {
  const std::vector<float> x = random_row(100, 7);
  for (DType t : {DType::F16, DType::BF16}) {
    std::vector<uint8_t> q(dtype_row_bytes(t, 100));
    quant::quantize_row(t, x.data(), q.data(), 100);
    std::vector<float> y(100);
    quant::dequantize_row(t, q.data(), y.data(), 100);
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = t == DType::F16 ? f16_to_f32(f32_to_f16(x[i])) : round_to_bf16(x[i]);
      ASSERT_EQ(y[i], want) << dtype_name(t) << " value " << i;
    }
  }
}

TEST(QuantRoundTrip, RejectsPartialBlocks) {
  std::vector<float> x(48, 1.0f);
  std::vector<uint8_t> q(1024);
  EXPECT_THROW(quant::quantize_row(DType::Q8_0, x.data(), q.data(), 48), Error);
  EXPECT_THROW(quant::dequantize_row(DType::Q4_K, q.data(), x.data(), 48), Error);
}

// The quantized matmul of every available ISA against the scalar reference (which
// dequantizes each weight row exactly and sums in double).
TEST(QuantMatmul, EveryIsaMatchesReference) {
  const int64_t out = 37, k = 512;
  for (DType t : {DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    std::vector<uint8_t> wbytes(dtype_row_bytes(t, out * k));
    for (int64_t r = 0; r < out; ++r) {
      const std::vector<float> row = random_row(k, uint32_t(r) + 99);
      quant::quantize_row(t, row.data(), wbytes.data() + size_t(r) * dtype_row_bytes(t, k), k);
    }
    TensorView w;
    w.data = wbytes.data();
    w.dtype = t;
    w.ndim = 2;
    w.shape = {out, k, 0, 0};
    for (int64_t n : {1, 5, 19}) {
      const std::vector<float> x = random_row(n * k, uint32_t(n));
      std::vector<float> bias = random_row(out, 5);
      std::vector<float> ref(size_t(n * out)), got(size_t(n * out)), mag(size_t(n * out)), wrow(static_cast<size_t>(k));
      ops::matmul_reference(x.data(), n, w, bias.data(), ref.data());
      for (int64_t c = 0; c < out; ++c) {  // mag = sum |x w| + |bias|: the scale of rounding errors
        quant::dequantize_row(t, w.row_bytes(c), wrow.data(), k);
        for (int64_t r = 0; r < n; ++r) {
          double m = std::fabs(bias[size_t(c)]);
          for (int64_t i = 0; i < k; ++i) m += std::fabs(double(x[size_t(r * k + i)]) * wrow[size_t(i)]);
          mag[size_t(r * out + c)] = float(m);
        }
      }
      // Block types on AVX-512 VNNI quantize x to int8: their reference is the int8 product.
      std::vector<float> ref_int8(size_t(n * out));
      if (t != DType::F16) {
        ops::qmatmul_detail::Q8Rows xq;
        ops::qmatmul_detail::quantize_rows_q8(x.data(), n, k, &xq);
        ops::qmatmul_detail::int8_matmul_reference(xq, t, wbytes.data(), out, bias.data(), ref_int8.data());
      }
      for (ops::Isa isa : {ops::Isa::kScalar, ops::Isa::kAvx2, ops::Isa::kAvx512}) {
        if (!ops::isa_available(isa)) continue;
        const bool int8 = ops::int8_path(isa, t);
        std::fill(got.begin(), got.end(), NAN);
        ops::matmul_with_isa(isa, x.data(), n, w, bias.data(), got.data());
        const std::vector<float>& want = int8 ? ref_int8 : ref;
        for (size_t i = 0; i < got.size(); ++i)
          // f32 accumulation of 513 terms vs double: worst case ~513 * 2^-24 ~ 3e-5 of sum |terms|.
          ASSERT_NEAR(got[i], want[i], 3e-5 * mag[i])
              << dtype_name(t) << " " << ops::isa_name(isa) << " n=" << n << " at " << i;
      }
    }
  }
}

// The AVX-512 row decoders against the scalar reference, bit for bit, on random blocks
// (odd block counts; Q4_K / Q6_K scales and minima of every sub-block).
TEST(QuantDecode, Avx512RowsEqualTheScalarReference) {
  if (!ops::isa_available(ops::Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (DType t : {DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t n = dtype_block_elems(t) == 256 ? 256 * 5 : 32 * 7 + (t == DType::F16 ? 3 : 0);
    const std::vector<float> x = random_row(n, 41);
    std::vector<uint8_t> bytes(dtype_row_bytes(t, n));
    quant::quantize_row(t, x.data(), bytes.data(), n);
    std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n), NAN);
    quant::dequantize_row(t, bytes.data(), want.data(), n);
    ops::qmatmul_detail::decode_row_avx512(t, bytes.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[size_t(i)], want[size_t(i)]) << dtype_name(t) << " at " << i;
  }
}

// AVX-512 decodes block weights one column block of whole rows at a time into the f32
// kernel (the block types' path on CPUs without VNNI; called directly here), and converts
// F16 weights in the kernel's loads: either way the result is bit-for-bit the f32
// kernel's on the decoded weights, for several column blocks, a partial last k block
// (768 = 512 + 256), an odd F16 row (771: a masked tail) and row counts in both work splits.
TEST(QuantMatmul, Avx512DecodedBlocksEqualTheF32KernelOnDecodedWeights) {
  if (!ops::isa_available(ops::Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int64_t out = 301;
  for (auto [t, k] : {std::pair{DType::F16, int64_t(768)}, std::pair{DType::F16, int64_t(771)},
                      std::pair{DType::Q4_0, int64_t(768)}, std::pair{DType::Q4_K, int64_t(768)},
                      std::pair{DType::Q6_K, int64_t(768)}}) {
    std::vector<uint8_t> wbytes(dtype_row_bytes(t, out * k));
    std::vector<float> decoded(size_t(out * k));
    for (int64_t r = 0; r < out; ++r) {
      const std::vector<float> row = random_row(k, uint32_t(r) + 7);
      quant::quantize_row(t, row.data(), wbytes.data() + size_t(r) * dtype_row_bytes(t, k), k);
      quant::dequantize_row(t, wbytes.data() + size_t(r) * dtype_row_bytes(t, k), decoded.data() + r * k, k);
    }
    TensorView w, wf;
    w.data = wbytes.data();
    w.dtype = t;
    w.ndim = wf.ndim = 2;
    w.shape = wf.shape = {out, k, 0, 0};
    wf.data = decoded.data();
    wf.dtype = DType::F32;
    for (int64_t n : {1, 7, 40}) {
      const std::vector<float> x = random_row(n * k, uint32_t(n) + 3), bias = random_row(out, 11);
      std::vector<float> got(size_t(n * out), NAN), want(size_t(n * out), NAN);
      ops::qmatmul_detail::decoded_matmul_avx512(x.data(), n, w, bias.data(), got.data());
      ops::matmul_with_isa(ops::Isa::kAvx512, x.data(), n, wf, bias.data(), want.data());
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], want[i]) << dtype_name(t) << " n=" << n << " at " << i;
    }
  }
}

// The int8 kernels (AVX-512 VNNI and AVX2) for every block type: against the scalar reference
// on odd sizes (odd block counts, row and column remainders of the micro-kernels), and the activation
// rounding against the f32 product: |y_int8 - y_f32| <= sum over blocks of
// d_x/2 * sum |scale * v| (the min term of Q4_K uses the exact sum of x, no rounding).
TEST(QuantMatmul, Int8KernelMatchesReferenceAndBound) {
  if (!ops::isa_available(ops::Isa::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const bool k_quant = dtype_block_elems(t) == 256;
    for (int64_t k : k_quant ? std::vector<int64_t>{256, 256 * 3, 2048} : std::vector<int64_t>{64, 32 * 9, 2048}) {
      const int64_t out = 37, nb = k / 32;
      const size_t row_bytes = dtype_row_bytes(t, k);
      std::vector<uint8_t> w(dtype_row_bytes(t, out * k));
      for (int64_t r = 0; r < out; ++r) {
        const std::vector<float> row = random_row(k, uint32_t(r) + 7);
        quant::quantize_row(t, row.data(), w.data() + size_t(r) * row_bytes, k);
      }
      for (int64_t n : {1, 6, 13}) {
        const std::vector<float> x = random_row(n * k, uint32_t(n) + 50), bias = random_row(out, 3);
        ops::qmatmul_detail::Q8Rows xq;
        ops::qmatmul_detail::quantize_rows_q8(x.data(), n, k, &xq);
        std::vector<float> ref(size_t(n * out)), got(size_t(n * out), NAN), got2(size_t(n * out), NAN),
            f32(size_t(n * out));
        ops::qmatmul_detail::int8_matmul_reference(xq, t, w.data(), out, bias.data(), ref.data());
        // Without VNNI only the AVX2 kernel runs; its result then stands in for both.
        ops::qmatmul_detail::int8_matmul_avx2(xq, t, w.data(), out, bias.data(), got2.data(), 2);
        if (ops::vnni_available())
          ops::qmatmul_detail::int8_matmul_avx512(xq, t, w.data(), out, bias.data(), got.data(), 2);
        else
          got = got2;
        TensorView wv;
        wv.data = w.data();
        wv.dtype = t;
        wv.ndim = 2;
        wv.shape = {out, k, 0, 0};
        ops::matmul_reference(x.data(), n, wv, bias.data(), f32.data());
        std::vector<float> wrow(static_cast<size_t>(k));
        for (int64_t c = 0; c < out; ++c) {
          quant::dequantize_row(t, w.data() + size_t(c) * row_bytes, wrow.data(), k);
          for (int64_t r = 0; r < n; ++r) {
            double mag = std::fabs(bias[size_t(c)]), bound = 0;
            for (int64_t b = 0; b < nb; ++b) {
              quant::Int8Block blk;
              quant::int8_block(t, w.data() + size_t(c) * row_bytes, b, &blk);
              double wsum = 0;
              for (int i = 0; i < 32; ++i) {
                wsum += std::fabs(double(blk.scale[i / 16]) * blk.v[i]);
                mag += std::fabs(double(x[size_t(r * k + 32 * b + i)]) * wrow[size_t(32 * b + i)]);
              }
              bound += 0.5 * xq.scale[size_t(r * nb + b)] * wsum;
            }
            const size_t i = size_t(r * out + c);
            // f32 accumulation of the block sums vs double: ~nb * 2^-24 of sum |terms|.
            ASSERT_NEAR(got[i], ref[i], 3e-5 * mag) << dtype_name(t) << " k=" << k << " n=" << n << " at " << i;
            ASSERT_NEAR(got2[i], ref[i], 3e-5 * mag) << "avx2 " << dtype_name(t) << " k=" << k << " n=" << n << " at " << i;
            ASSERT_LE(std::fabs(double(ref[i]) - double(f32[i])), bound * (1 + 1e-5) + 1e-5 * mag)
                << dtype_name(t) << " " << i;
          }
        }
      }
    }
  }
}

// Every block type read as int8 values and f32 factors gives back dequantize_row's
// values bit for bit (scale * v - min), on random blocks of every sub-block position.
TEST(QuantBlocks, Int8BlocksEqualTheDequantizedValues) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t n = dtype_block_elems(t) == 256 ? 256 * 3 : 32 * 5;
    const std::vector<float> x = random_row(n, 77);
    std::vector<uint8_t> bytes(dtype_row_bytes(t, n));
    quant::quantize_row(t, x.data(), bytes.data(), n);
    std::vector<float> want(static_cast<size_t>(n));
    quant::dequantize_row(t, bytes.data(), want.data(), n);
    int distinct_scales = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
      quant::Int8Block blk;
      quant::int8_block(t, bytes.data(), b, &blk);
      distinct_scales += blk.scale[0] != blk.scale[1];
      for (int i = 0; i < 32; ++i)
        ASSERT_EQ(blk.scale[i / 16] * float(blk.v[i]) - blk.min, want[size_t(32 * b + i)])
            << dtype_name(t) << " block " << b << " value " << i;
    }
    if (t == DType::Q6_K) {
      EXPECT_GT(distinct_scales, 0) << "Q6_K's two 16-value scales per block";
    }
  }
  std::vector<uint8_t> f16(64);
  quant::Int8Block blk;
  EXPECT_THROW(quant::int8_block(DType::F16, f16.data(), 0, &blk), Error);
}

}  // namespace
}  // namespace unmask
