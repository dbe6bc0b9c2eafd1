// The forward's building-block ops against scalar references (double precision
// where the op computes in f32), on random non-zero inputs of odd sizes, plus
// properties that pin down the math independently of any reference code.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/ops.h"
#include "unmask/tensor.h"

namespace unmask {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = dist(rng);
    while (x == 0.0f);
  }
  return v;
}

TensorView view_of(const void* data, DType dtype, std::initializer_list<int64_t> shape) {
  TensorView t;
  t.data = data;
  t.dtype = dtype;
  for (int64_t d : shape) t.shape[size_t(t.ndim++)] = d;
  return t;
}

std::vector<uint16_t> to_bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> out;
  for (float x : v) out.push_back(f32_to_bf16(x));
  return out;
}

bool is_bf16(float x) { return round_to_bf16(x) == x; }

// ---- attention --------------------------------------------------------------------------

struct AttentionCase {
  int heads, kv_heads, head_dim;
  std::vector<int32_t> seq_offsets;
};

class AttentionVsReference : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionVsReference, MatchesDoublePrecisionReference) {
  const AttentionCase& c = GetParam();
  const int64_t n = c.seq_offsets.back();
  const ops::AttentionShape shape{c.heads, c.kv_heads, c.head_dim};
  // Inputs in [-2, 2] make the softmax far from uniform, so a wrong max or scale shows.
  const std::vector<float> q = random_values(size_t(n * c.heads * c.head_dim), 1, -2, 2);
  const std::vector<float> k = random_values(size_t(n * c.kv_heads * c.head_dim), 2, -2, 2);
  const std::vector<float> v = random_values(size_t(n * c.kv_heads * c.head_dim), 3);
  std::vector<float> out(q.size(), NAN), ref(q.size(), NAN);
  const int n_seq = int(c.seq_offsets.size()) - 1;
  ops::attention(q.data(), k.data(), v.data(), c.seq_offsets.data(), n_seq, shape, false, out.data());
  ops::attention_reference(q.data(), k.data(), v.data(), c.seq_offsets.data(), n_seq, shape, ref.data());
  for (size_t i = 0; i < out.size(); ++i)
    // f32 dot products over <= 16 terms and an f32 softmax over <= 31 keys, against a
    // double reference: errors stay near 1e-6 for outputs of size <= 1.
    ASSERT_NEAR(out[i], ref[i], 5e-6) << "element " << i;

  // bf16 mode rounds the same f32 result, nothing else.
  std::vector<float> rounded(q.size());
  ops::attention(q.data(), k.data(), v.data(), c.seq_offsets.data(), n_seq, shape, true, rounded.data());
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(rounded[i], round_to_bf16(out[i])) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(
    OddLengthsAndGqaGroups, AttentionVsReference,
    ::testing::Values(AttentionCase{3, 3, 5, {0, 7}},                   // group 1, one sequence
                      AttentionCase{4, 2, 6, {0, 1, 14, 31}},           // group 2, three sequences incl. length 1
                      AttentionCase{8, 2, 16, {0, 9, 9, 22}},           // group 4, an empty sequence in between
                      AttentionCase{4, 1, 7, {0, 5, 10, 11, 24}}),      // group 4 (MQA), four sequences
    [](const ::testing::TestParamInfo<AttentionCase>& case_info) {  // e.g. h8_kv2_d16_seq3
      const AttentionCase& c = case_info.param;
      return "h" + std::to_string(c.heads) + "_kv" + std::to_string(c.kv_heads) + "_d" + std::to_string(c.head_dim) +
             "_seq" + std::to_string(c.seq_offsets.size() - 1);
    });

// Canvases large enough that heads run on parallel threads: the result must not depend on
// the thread count (each head's arithmetic is the same whoever runs it).
TEST(Attention, HeadParallelResultEqualsOneThreadBitForBit) {
  const ops::AttentionShape shape{6, 2, 24};
  const std::vector<int32_t> offsets = {0, 37, 160};
  const int64_t n = offsets.back();
  const std::vector<float> q = random_values(size_t(n * 6 * 24), 11, -2, 2);
  const std::vector<float> k = random_values(size_t(n * 2 * 24), 12, -2, 2);
  const std::vector<float> v = random_values(size_t(n * 2 * 24), 13);
  const int threads_before = omp_get_max_threads();
  std::vector<float> one(q.size()), many(q.size()), ref(q.size());
  omp_set_num_threads(1);
  ops::attention(q.data(), k.data(), v.data(), offsets.data(), 2, shape, false, one.data());
  omp_set_num_threads(std::max(2, threads_before));
  ops::attention(q.data(), k.data(), v.data(), offsets.data(), 2, shape, false, many.data());
  omp_set_num_threads(threads_before);
  ops::attention_reference(q.data(), k.data(), v.data(), offsets.data(), 2, shape, ref.data());
  for (size_t i = 0; i < q.size(); ++i) {
    ASSERT_EQ(many[i], one[i]) << "element " << i;
    // f32 softmax over up to 123 keys and dot products of 24 terms vs double: ~1e-6.
    ASSERT_NEAR(many[i], ref[i], 1e-5) << "element " << i;
  }
}

TEST(Attention, QueryHeadReadsItsGroupsKvHead) {
  // 4 query heads, 2 kv heads: heads 0-1 read kv head 0, heads 2-3 kv head 1. With v
  // constant per kv head the output is that constant, whatever the softmax weights.
  const int n = 5, hd = 3;
  const ops::AttentionShape shape{4, 2, hd};
  const std::vector<float> q = random_values(size_t(n * 4 * hd), 4), k = random_values(size_t(n * 2 * hd), 5);
  std::vector<float> v(size_t(n * 2 * hd));
  for (int r = 0; r < n; ++r)
    for (int g = 0; g < 2; ++g)
      for (int d = 0; d < hd; ++d) v[size_t((r * 2 + g) * hd + d)] = g == 0 ? 1.5f : -3.0f;
  const int32_t offsets[] = {0, n};
  std::vector<float> out(q.size());
  ops::attention(q.data(), k.data(), v.data(), offsets, 1, shape, false, out.data());
  for (int r = 0; r < n; ++r)
    for (int h = 0; h < 4; ++h)
      for (int d = 0; d < hd; ++d)
        // Weights sum to 1 up to f32 rounding of the normaliser.
        EXPECT_NEAR(out[size_t((r * 4 + h) * hd + d)], h < 2 ? 1.5f : -3.0f, 1e-6) << "row " << r << " head " << h;
}

TEST(Attention, SequencesDoNotSeeEachOther) {
  const int hd = 4, heads = 2;
  const ops::AttentionShape shape{heads, heads, hd};
  const int32_t offsets[] = {0, 6, 13};
  std::vector<float> q = random_values(13 * heads * hd, 6), k = random_values(13 * heads * hd, 7),
                     v = random_values(13 * heads * hd, 8);
  std::vector<float> before(q.size()), after(q.size());
  ops::attention(q.data(), k.data(), v.data(), offsets, 2, shape, false, before.data());
  for (size_t i = 6 * heads * hd; i < k.size(); ++i) {  // change only the second sequence
    k[i] *= -2.0f;
    v[i] += 1.0f;
  }
  ops::attention(q.data(), k.data(), v.data(), offsets, 2, shape, false, after.data());
  for (size_t i = 0; i < 6 * heads * hd; ++i) ASSERT_EQ(before[i], after[i]) << "element " << i;
  bool second_changed = false;
  for (size_t i = 6 * heads * hd; i < q.size(); ++i) second_changed = second_changed || before[i] != after[i];
  EXPECT_TRUE(second_changed);
}

TEST(Attention, LargeScoresStayFinite) {
  // Scores near 1e4 overflow exp() unless the row max is subtracted first.
  const int n = 9, hd = 8;
  const ops::AttentionShape shape{2, 2, hd};
  const std::vector<float> q = random_values(n * 2 * hd, 9, -40, 40), k = random_values(n * 2 * hd, 10, -40, 40),
                           v = random_values(n * 2 * hd, 11);
  const int32_t offsets[] = {0, n};
  std::vector<float> out(q.size()), ref(q.size());
  ops::attention(q.data(), k.data(), v.data(), offsets, 1, shape, false, out.data());
  ops::attention_reference(q.data(), k.data(), v.data(), offsets, 1, shape, ref.data());
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(std::isfinite(out[i])) << "element " << i;
    // Near one-hot softmax: f32 scores ~1e4 carry ~1e-3 absolute error, moving weights
    // of the runner-up keys by about that much.
    ASSERT_NEAR(out[i], ref[i], 5e-3) << "element " << i;
  }
}

// Long canvases (more than 512 keys) run blocked, flash-style: two query blocks (70 rows:
// 64 + 6), four key blocks (777 keys: 3 x 256 + 9), GQA, head dim 40 (a masked vector
// tail). Bidirectional, and block-causal with keys in reverse position order so the first
// key blocks are invisible to every query (the online softmax starts from "nothing seen").
TEST(Attention, LongCanvasRunsBlockedAndMatchesReference) {
  const int64_t nq = 70, nk = 777;
  const int hd = 40;
  const ops::AttentionShape shape{4, 2, hd};
  const std::vector<float> q = random_values(size_t(nq * 4 * hd), 21, -3, 3);
  const std::vector<float> k = random_values(size_t(nk * 2 * hd), 22, -3, 3);
  const std::vector<float> v = random_values(size_t(nk * 2 * hd), 23);
  std::vector<int32_t> qpos, kpos;
  for (int64_t i = 0; i < nq; ++i) qpos.push_back(int32_t(300 + i));
  for (int64_t j = 0; j < nk; ++j) kpos.push_back(int32_t(nk - 1 - j));
  for (const ops::AttentionMask mask : {ops::AttentionMask{}, ops::AttentionMask{64, qpos.data(), kpos.data()}}) {
    std::vector<float> out(q.size(), NAN), ref(q.size(), NAN), rounded(q.size(), NAN);
    ops::attention_seq(q.data(), nq, k.data(), v.data(), nk, shape, false, out.data(), mask);
    ops::attention_seq_reference(q.data(), nq, k.data(), v.data(), nk, shape, ref.data(), mask);
    // Outputs are convex combinations of |v| <= 1; f32 scores (|s| <= ~60), exp and
    // sums over up to 777 keys with the online rescaling: ~1e-6 typical, 2e-5 bound.
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 2e-5) << "block " << mask.block << " at " << i;
    // bf16 output: the same values rounded once at the store.
    ops::attention_seq(q.data(), nq, k.data(), v.data(), nk, shape, true, rounded.data(), mask);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(rounded[i], round_to_bf16(out[i])) << i;
  }
  // A batch of a long and a short sequence: each as if alone, bit for bit.
  std::vector<const float*> k_rows, v_rows;
  for (int64_t j = 0; j < nk; ++j) {
    k_rows.push_back(k.data() + j * 2 * hd);
    v_rows.push_back(v.data() + j * 2 * hd);
  }
  std::vector<float> both(q.size(), NAN), alone(q.size(), NAN);
  const ops::AttentionJob jobs[] = {{q.data(), 60, k_rows.data(), v_rows.data(), nk, both.data(), {}},
                                    {q.data() + 60 * 4 * hd, 10, k_rows.data(), v_rows.data(), 30, both.data() + 60 * 4 * hd, {}}};
  ops::attention_jobs(jobs, 2, shape, false);
  ops::attention_seq(q.data(), 60, k.data(), v.data(), nk, shape, false, alone.data());
  ops::attention_seq(q.data() + 60 * 4 * hd, 10, k.data(), v.data(), 30, shape, false, alone.data() + 60 * 4 * hd);
  for (size_t i = 0; i < both.size(); ++i) ASSERT_EQ(both[i], alone[i]) << i;
}

// ---- RoPE --------------------------------------------------------------------------------

TEST(Rope, PositionZeroIsIdentity) {
  const ops::RopeParams p{3, 10, 10, 10000.0, ops::RopeRounding::kNone};
  const std::vector<float> x = random_values(2 * 30, 12);
  std::vector<float> y = x;
  const int32_t positions[] = {0, 0};
  ops::rope_neox(y.data(), 2, positions, p);
  EXPECT_EQ(y, x);
}

TEST(Rope, HandComputedCase) {
  // head_dim 4, theta 1e4: inv_freq = {1, 1/100}. At position 1 the pair (x0, x2)
  // turns by 1 rad and (x1, x3) by 0.01 rad:
  //   x0' = 1 cos 1 - 3 sin 1,  x2' = 3 cos 1 + 1 sin 1,  likewise with 0.01 for (2, 4).
  const ops::RopeParams p{1, 4, 4, 10000.0, ops::RopeRounding::kNone};
  std::vector<float> x = {1, 2, 3, 4};
  const int32_t pos[] = {1};
  ops::rope_neox(x.data(), 1, pos, p);
  // f32 sin/cos and two products per output: a few ulps of values <= 4.
  const float tol = 2e-6f;
  EXPECT_NEAR(x[0], -1.98411065, tol);
  EXPECT_NEAR(x[1], 1.95990067, tol);
  EXPECT_NEAR(x[2], 2.46237790, tol);
  EXPECT_NEAR(x[3], 4.01979967, tol);
}

TEST(Rope, RotationPreservesEachPairsNorm) {
  const int heads = 3, hd = 14, n = 7;
  const ops::RopeParams p{heads, hd, hd, 500000.0, ops::RopeRounding::kNone};
  const std::vector<float> x = random_values(size_t(n * heads * hd), 13);
  std::vector<float> y = x;
  const std::vector<int32_t> positions = {0, 1, 2, 17, 255, 4095, 131071};
  ops::rope_neox(y.data(), n, positions.data(), p);
  for (int r = 0; r < n; ++r)
    for (int h = 0; h < heads; ++h)
      for (int j = 0; j < hd / 2; ++j) {
        const size_t a = size_t((r * heads + h) * hd + j), b = a + hd / 2;
        const double before = std::hypot(double(x[a]), double(x[b])), after = std::hypot(double(y[a]), double(y[b]));
        // cos^2 + sin^2 = 1 up to f32 rounding of cos, sin and the products.
        EXPECT_NEAR(after, before, 1e-6 * (1 + before)) << "row " << r << " head " << h << " pair " << j;
      }
}

TEST(Rope, DotProductDependsOnlyOnRelativePosition) {
  const int hd = 16;
  const ops::RopeParams p{1, hd, hd, 10000.0, ops::RopeRounding::kNone};
  const std::vector<float> q = random_values(hd, 14), k = random_values(hd, 15);
  auto rotated_dot = [&](int32_t mq, int32_t mk) {
    std::vector<float> a = q, b = k;
    ops::rope_neox(a.data(), 1, &mq, p);
    ops::rope_neox(b.data(), 1, &mk, p);
    double dot = 0;
    for (int d = 0; d < hd; ++d) dot += double(a[size_t(d)]) * b[size_t(d)];
    return dot;
  };
  // f32 angles m * inv_freq at m ~ 1000 carry ~6e-5 rad error.
  EXPECT_NEAR(rotated_dot(5, 2), rotated_dot(1003, 1000), 1e-3);
  EXPECT_NEAR(rotated_dot(2, 9), rotated_dot(40, 47), 1e-4);
}

TEST(Rope, HeadsRotateAlikeAndPartialRopeLeavesTheTail) {
  // head_dim 6 with rotary_dim 4: dims 4 and 5 of each head pass through.
  const ops::RopeParams p{2, 6, 4, 10000.0, ops::RopeRounding::kNone};
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6};
  const int32_t pos[] = {1};
  ops::rope_neox(x.data(), 1, pos, p);
  for (int d = 0; d < 6; ++d) EXPECT_EQ(x[size_t(d)], x[size_t(6 + d)]) << "dim " << d;
  EXPECT_EQ(x[4], 5.0f);
  EXPECT_EQ(x[5], 6.0f);
  // The rotated part is the head_dim-4 case above.
  EXPECT_NEAR(x[0], -1.98411065, 2e-6);
  EXPECT_NEAR(x[3], 4.01979967, 2e-6);
}

TEST(Rope, Bf16RoundingModes) {
  const int n = 5, heads = 2, hd = 8;
  std::vector<float> base = random_values(size_t(n * heads * hd), 16);
  for (float& v : base) v = round_to_bf16(v);  // bf16 activations
  const std::vector<int32_t> positions = {0, 3, 11, 12, 100};
  std::vector<float> plain = base, rotate_f32 = base, cos_sin = base;
  ops::rope_neox(plain.data(), n, positions.data(), {heads, hd, hd, 10000.0, ops::RopeRounding::kNone});
  ops::rope_neox(rotate_f32.data(), n, positions.data(), {heads, hd, hd, 10000.0, ops::RopeRounding::kRotateF32});
  ops::rope_neox(cos_sin.data(), n, positions.data(), {heads, hd, hd, 10000.0, ops::RopeRounding::kCosSinBf16});
  for (size_t i = 0; i < base.size(); ++i) {
    EXPECT_EQ(rotate_f32[i], round_to_bf16(plain[i])) << "element " << i;  // rotate in f32, round once
    EXPECT_TRUE(is_bf16(cos_sin[i])) << "element " << i;
    // bf16 cos/sin and rounded products: a few bf16 ulps (2^-8 relative) of values <= 1.4.
    EXPECT_NEAR(cos_sin[i], plain[i], 0.03) << "element " << i;
  }
}

// ---- RMSNorm ------------------------------------------------------------------------------

TEST(RmsNorm, MatchesDoubleFormula) {
  const int64_t n = 5, d = 37;
  const float eps = 1e-5f;
  const std::vector<float> x = random_values(size_t(n * d), 17, -3, 3), w = random_values(size_t(d), 18, 0.5f, 1.5f);
  std::vector<float> y(x.size());
  ops::rms_norm(x.data(), n, d, view_of(w.data(), DType::F32, {d}), eps, false, y.data());
  for (int64_t r = 0; r < n; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += double(x[size_t(r * d + j)]) * x[size_t(r * d + j)];
    const double inv = 1.0 / std::sqrt(ss / double(d) + double(eps));
    for (int64_t j = 0; j < d; ++j) {
      const double ref = double(x[size_t(r * d + j)]) * inv * w[size_t(j)];
      // f32 rsqrt of an f32-rounded variance, then two f32 products: a few ulps.
      EXPECT_NEAR(y[size_t(r * d + j)], ref, 1e-6 * (1 + std::abs(ref))) << "row " << r << " col " << j;
    }
  }
}

TEST(RmsNorm, ZeroRowIsZeroNotNan) {
  const std::vector<float> x(9, 0.0f), w(9, 1.0f);
  std::vector<float> y(9, NAN);
  ops::rms_norm(x.data(), 1, 9, view_of(w.data(), DType::F32, {9}), 1e-6f, false, y.data());
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(RmsNorm, Bf16WeightsReadAsTheirF32Values) {
  const int64_t n = 3, d = 19;
  const std::vector<float> x = random_values(size_t(n * d), 19);
  std::vector<float> w = random_values(size_t(d), 20, 0.5f, 1.5f);
  for (float& v : w) v = round_to_bf16(v);
  const std::vector<uint16_t> w16 = to_bf16_bits(w);
  std::vector<float> from_f32(x.size()), from_bf16(x.size());
  ops::rms_norm(x.data(), n, d, view_of(w.data(), DType::F32, {d}), 1e-5f, false, from_f32.data());
  ops::rms_norm(x.data(), n, d, view_of(w16.data(), DType::BF16, {d}), 1e-5f, false, from_bf16.data());
  EXPECT_EQ(from_f32, from_bf16);

  // bf16 activations: outputs are bf16 values close to the f32 result.
  std::vector<float> rounded(x.size());
  ops::rms_norm(x.data(), n, d, view_of(w16.data(), DType::BF16, {d}), 1e-5f, true, rounded.data());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_TRUE(is_bf16(rounded[i])) << "element " << i;
    // Two bf16 roundings (normalised value, product): <= 2^-8 relative each.
    EXPECT_NEAR(rounded[i], from_f32[i], 8e-3 * std::abs(from_f32[i])) << "element " << i;
  }
}

// ---- SwiGLU, residual, rounding --------------------------------------------------------------

TEST(SiluMul, MatchesDoubleFormula) {
  const int64_t n = 1001;
  std::vector<float> g = random_values(size_t(n), 21, -8, 8);
  const std::vector<float> u = random_values(size_t(n), 22, -2, 2);
  // Extremes: exp(-g) overflows f32 for g = -100; the result must be ~0, not NaN.
  g[0] = -100.0f;
  g[1] = 100.0f;
  g[2] = -88.5f;
  const std::vector<float> g0 = g;
  ops::silu_mul(g.data(), u.data(), n, false);
  for (int64_t i = 0; i < n; ++i) {
    const double gi = g0[size_t(i)];
    const double ref = gi / (1.0 + std::exp(-gi)) * u[size_t(i)];
    ASSERT_TRUE(std::isfinite(g[size_t(i)])) << "element " << i;
    // f32 exp, divide and multiply: a few ulps; the abs term covers results near 0.
    EXPECT_NEAR(g[size_t(i)], ref, 1e-6 * std::abs(ref) + 1e-30) << "element " << i << " gate " << gi;
  }
}

TEST(SiluMul, Bf16RoundsEachStep) {
  std::vector<float> g = random_values(33, 23, -4, 4), u = random_values(33, 24);
  for (float& v : g) v = round_to_bf16(v);
  for (float& v : u) v = round_to_bf16(v);
  std::vector<float> out = g;
  ops::silu_mul(out.data(), u.data(), 33, true);
  for (size_t i = 0; i < g.size(); ++i) {
    const float s = round_to_bf16(g[i] / (1.0f + std::exp(-g[i])));
    EXPECT_EQ(out[i], round_to_bf16(s * u[i])) << "element " << i;
  }
}

TEST(AddInplace, AddsAndRoundsWhenBf16) {
  std::vector<float> x = random_values(17, 25), y = random_values(17, 26);
  std::vector<float> plain = x, rounded = x;
  ops::add_inplace(plain.data(), y.data(), 17, false);
  ops::add_inplace(rounded.data(), y.data(), 17, true);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(plain[i], x[i] + y[i]);
    EXPECT_EQ(rounded[i], round_to_bf16(x[i] + y[i]));
  }
}

// ---- embedding lookup --------------------------------------------------------------------------

TEST(Embedding, F32AndBf16TablesGiveTheSelectedRows) {
  const int64_t vocab = 11, d = 7;
  std::vector<float> table = random_values(size_t(vocab * d), 27);
  for (float& v : table) v = round_to_bf16(v);  // so the bf16 copy holds the same values
  const std::vector<uint16_t> table16 = to_bf16_bits(table);
  const std::vector<int32_t> ids = {0, 10, 3, 3, 7};
  for (DType dt : {DType::F32, DType::BF16}) {
    const void* data = dt == DType::F32 ? static_cast<const void*>(table.data()) : table16.data();
    std::vector<float> out(ids.size() * size_t(d), NAN);
    ops::embedding_lookup(view_of(data, dt, {vocab, d}), ids.data(), int64_t(ids.size()), out.data());
    for (size_t r = 0; r < ids.size(); ++r)
      for (int64_t j = 0; j < d; ++j)
        ASSERT_EQ(out[r * size_t(d) + size_t(j)], table[size_t(ids[r] * d + j)])
            << dtype_name(dt) << " row " << r << " col " << j;
  }
}

TEST(Embedding, F16Table) {
  // 1.0, -2.0, 0.5, 65504 (largest f16), 2^-24 (smallest subnormal), -0.
  const std::vector<uint16_t> bits = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000};
  const std::vector<float> values = {1.0f, -2.0f, 0.5f, 65504.0f, 5.9604645e-08f, -0.0f};
  const std::vector<int32_t> ids = {2, 0, 1};
  std::vector<float> out(6);
  ops::embedding_lookup(view_of(bits.data(), DType::F16, {3, 2}), ids.data(), 3, out.data());
  const std::vector<float> want = {values[4], values[5], values[0], values[1], values[2], values[3]};
  EXPECT_EQ(out, want);
  EXPECT_TRUE(std::signbit(out[1]));
}

}  // namespace
}  // namespace unmask
