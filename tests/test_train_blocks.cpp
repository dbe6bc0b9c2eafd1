// The trainer's hand-written backward, block by block, against central finite
// differences in float64 (train/blocks.h is templated on the element type), and the
// transposed matmuls of the backward (ops/cpu/matmul_grad.h) against their scalar
// references.
//
// Finite-difference check: for a block y = f(x) and a fixed random cotangent r, the
// scalar S(x) = sum(r * f(x)) has dS/dx = backward(r). Central differences with step
// h = 1e-5 have truncation error O(h^2 * f''') ~ 1e-10 and rounding error
// O(eps_f64 * |S| / h) ~ 1e-11 at these sizes, so a relative error bound of 1e-7
// separates a correct backward (observed ~1e-10) from any wrong term (>= 1e-2).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "ops/cpu/matmul_grad.h"
#include "train/attention.h"
#include "train/blocks.h"

namespace unmask::train {
namespace {

constexpr double kStep = 1e-5;
constexpr double kRelBound = 1e-7;

std::vector<double> random_vec(size_t n, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

double weighted_sum(const std::vector<double>& y, const std::vector<double>& r) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += y[i] * r[i];
  return s;
}

// Checks `analytic` (dS/dx) against central differences of S = sum(r * f()) over every
// element of *x (f reads *x).
void expect_matches_fd(std::vector<double>* x, const std::function<std::vector<double>()>& f,
                       const std::vector<double>& r, const std::vector<double>& analytic, const char* what) {
  ASSERT_EQ(analytic.size(), x->size()) << what;
  double max_err = 0, max_ref = 0;
  for (size_t i = 0; i < x->size(); ++i) {
    const double keep = (*x)[i];
    (*x)[i] = keep + kStep;
    const double up = weighted_sum(f(), r);
    (*x)[i] = keep - kStep;
    const double down = weighted_sum(f(), r);
    (*x)[i] = keep;
    const double fd = (up - down) / (2 * kStep);
    max_err = std::max(max_err, std::abs(fd - analytic[i]));
    max_ref = std::max(max_ref, std::abs(fd));
  }
  ASSERT_GT(max_ref, 1e-3) << what << ": gradient vanishes, the check would be vacuous";
  EXPECT_LT(max_err / max_ref, kRelBound) << what;
}

TEST(TrainBlocks, RmsNormBackwardMatchesFiniteDifferences) {
  const int64_t n = 5, d = 7;
  std::vector<double> x = random_vec(size_t(n * d), 1), w = random_vec(size_t(d), 2, 0.5, 1.5);
  const std::vector<double> r = random_vec(size_t(n * d), 3);
  auto f = [&] {
    std::vector<double> y(size_t(n * d)), rs(static_cast<size_t>(n));
    rmsnorm_forward(x.data(), w.data(), n, d, 1e-5, y.data(), rs.data());
    return y;
  };
  std::vector<double> y(size_t(n * d)), rs(static_cast<size_t>(n)), dx(size_t(n * d), 0.0), dw(size_t(d), 0.0);
  rmsnorm_forward(x.data(), w.data(), n, d, 1e-5, y.data(), rs.data());
  rmsnorm_backward(x.data(), w.data(), rs.data(), r.data(), n, d, dx.data(), dw.data());
  expect_matches_fd(&x, f, r, dx, "rmsnorm dx");
  expect_matches_fd(&w, f, r, dw, "rmsnorm dw");
}

TEST(TrainBlocks, RopeBackwardMatchesFiniteDifferences) {
  const int seq_len = 5, heads = 3, hd = 6;
  const int64_t n = 2 * seq_len;  // two sequences: positions restart per sequence
  const RopeTable<double> table = make_rope_table<double>(seq_len, hd, 10000.0);
  std::vector<double> x = random_vec(size_t(n * heads * hd), 4);
  const std::vector<double> r = random_vec(x.size(), 5);
  auto f = [&] {
    std::vector<double> y = x;
    rope_apply(y.data(), n, heads, hd, table, false);
    return y;
  };
  std::vector<double> dx = r;
  rope_apply(dx.data(), n, heads, hd, table, true);
  expect_matches_fd(&x, f, r, dx, "rope dx");
}

TEST(TrainBlocks, AttentionBackwardMatchesFiniteDifferences) {
  const AttentionDims a{2, 5, 3, 4};
  const size_t n = size_t(a.batch) * size_t(a.seq_len) * size_t(a.heads) * size_t(a.head_dim);
  std::vector<double> q = random_vec(n, 6, -2, 2), k = random_vec(n, 7, -2, 2), v = random_vec(n, 8);
  const std::vector<double> r = random_vec(n, 9);
  std::vector<double> lse(size_t(a.batch * a.seq_len * a.heads));
  auto f = [&] {
    std::vector<double> out(n);
    attention_forward(q.data(), k.data(), v.data(), a, out.data(), lse.data());
    return out;
  };
  const std::vector<double> out = f();
  std::vector<double> dq(n), dk(n), dv(n);
  attention_backward(q.data(), k.data(), v.data(), out.data(), lse.data(), r.data(), a, dq.data(), dk.data(),
                     dv.data());
  expect_matches_fd(&q, f, r, dq, "attention dq");
  expect_matches_fd(&k, f, r, dk, "attention dk");
  expect_matches_fd(&v, f, r, dv, "attention dv");
}

TEST(TrainBlocks, SwiGluBackwardMatchesFiniteDifferences) {
  const int64_t n = 23;
  std::vector<double> g = random_vec(size_t(n), 10, -4, 4), u = random_vec(size_t(n), 11);
  const std::vector<double> r = random_vec(size_t(n), 12);
  auto f = [&] {
    std::vector<double> s(static_cast<size_t>(n));
    swiglu_forward(g.data(), u.data(), n, s.data());
    return s;
  };
  std::vector<double> dg(static_cast<size_t>(n)), du(static_cast<size_t>(n));
  swiglu_backward(g.data(), u.data(), r.data(), n, dg.data(), du.data());
  expect_matches_fd(&g, f, r, dg, "swiglu dg");
  expect_matches_fd(&u, f, r, du, "swiglu du");
}

TEST(TrainBlocks, CrossEntropyBackwardMatchesFiniteDifferences) {
  const int64_t rows = 4, vocab = 11;
  std::vector<double> z = random_vec(size_t(rows * vocab), 13, -3, 3);
  const std::vector<int32_t> targets = {3, 0, 10, 3};
  const std::vector<double> weight = {0.5, 1.25, 0.0, 2.0};  // a zero weight row contributes nothing
  const std::vector<double> one = {1.0};
  auto f = [&] {
    std::vector<double> copy = z;
    return std::vector<double>{cross_entropy(copy.data(), rows, vocab, targets.data(), weight.data(), false)};
  };
  std::vector<double> dz = z;
  const double loss = cross_entropy(dz.data(), rows, vocab, targets.data(), weight.data(), true);
  EXPECT_DOUBLE_EQ(loss, f()[0]);
  expect_matches_fd(&z, f, one, dz, "cross-entropy dlogits");
}

TEST(TrainBlocks, EmbeddingBackwardAddsRepeatedIds) {
  const int64_t vocab = 6, d = 3, n = 5;
  std::vector<double> table = random_vec(size_t(vocab * d), 14);
  const std::vector<int32_t> ids = {2, 5, 2, 0, 2};  // id 2 three times
  const std::vector<double> r = random_vec(size_t(n * d), 15);
  auto f = [&] {
    std::vector<double> out(size_t(n * d));
    embedding_forward(table.data(), ids.data(), n, d, out.data());
    return out;
  };
  std::vector<double> dtable(table.size(), 0.0);
  embedding_backward(r.data(), ids.data(), n, d, dtable.data());
  expect_matches_fd(&table, f, r, dtable, "embedding dtable");
}

// ---- transposed matmuls against their scalar references ----

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(0.1f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = (rng() & 1 ? 1.0f : -1.0f) * mag(rng);
  return v;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += double(a[i] - b[i]) * double(a[i] - b[i]);
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num / den);
}

// Kernels and references sum the same (bf16-rounded, for BF16) products in different
// orders, f32 against double: relative differences ~ sqrt(k) * 6e-8 ~ 1e-6 here, so
// 1e-5 catches any wrong index while allowing summation-order noise.
constexpr double kMatmulBound = 1e-5;

TEST(TrainMatmulGrad, DxMatchesReferenceF32AndBf16) {
  for (DType dt : {DType::F32, DType::BF16}) {
    const int64_t n = 37, out = 29, k = 45;
    const std::vector<float> dy = random_floats(size_t(n * out), 16), wf = random_floats(size_t(out * k), 17);
    std::vector<uint16_t> wb(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) wb[i] = f32_to_bf16(wf[i]);
    const void* wdata = dt == DType::F32 ? static_cast<const void*>(wf.data()) : wb.data();
    const TensorView w = ops::matrix_view(wdata, dt, out, k);
    for (bool accumulate : {false, true}) {
      std::vector<float> got = random_floats(size_t(n * k), 18), want = got;
      ops::matmul_dx(dy.data(), n, w, got.data(), accumulate);
      ops::matmul_dx_reference(dy.data(), n, w, want.data(), accumulate);
      EXPECT_LT(rel_diff(got, want), kMatmulBound) << dtype_name(dt) << " accumulate " << accumulate;
    }
  }
}

TEST(TrainMatmulGrad, DwMatchesReferenceF32AndBf16) {
  for (DType dt : {DType::F32, DType::BF16}) {
    const int64_t n = 53, out = 19, k = 33;
    const std::vector<float> dy = random_floats(size_t(n * out), 19), x = random_floats(size_t(n * k), 20);
    for (bool accumulate : {false, true}) {
      std::vector<float> got = random_floats(size_t(out * k), 21), want = got;
      ops::matmul_dw(dy.data(), x.data(), n, out, k, dt, got.data(), accumulate);
      ops::matmul_dw_reference(dy.data(), x.data(), n, out, k, dt, want.data(), accumulate);
      EXPECT_LT(rel_diff(got, want), kMatmulBound) << dtype_name(dt) << " accumulate " << accumulate;
    }
  }
}

// The f32 cross-entropy (one SIMD exp pass, gradient = e * w / S) against the float64
// plain loops on the same logits: loss and every dlogit. Both round exp to ~1 ulp of f32
// and the f32 path stores f32 probabilities, so 1e-6 relative bounds their difference.
TEST(TrainBlocks, FloatCrossEntropyMatchesTheDoublePath) {
  const int64_t rows = 5, vocab = 4099;
  const std::vector<float> zf = random_floats(size_t(rows * vocab), 31);
  std::vector<float> z = zf;
  for (float& v : z) v *= 8.0f;  // logits spread over ~[-8, 8]
  const std::vector<int32_t> targets = {0, 4098, 17, 2048, 17};
  const std::vector<float> weight = {1.0f, 0.25f, 0.0f, 3.0f, 1.0f};
  std::vector<double> zd(z.begin(), z.end()), wd(weight.begin(), weight.end());
  std::vector<float> dz = z;
  const double loss = cross_entropy(dz.data(), rows, vocab, targets.data(), weight.data(), true);
  const double want = cross_entropy(zd.data(), rows, vocab, targets.data(), wd.data(), true);
  EXPECT_NEAR(loss, want, 1e-6 * std::fabs(want));
  std::vector<float> fwd = z;
  EXPECT_EQ(loss, cross_entropy(fwd.data(), rows, vocab, targets.data(), weight.data(), false));
  std::vector<float> want_dz(zd.begin(), zd.end());
  EXPECT_LT(rel_diff(dz, want_dz), 1e-6);
  for (int64_t c = 0; c < vocab; ++c) ASSERT_EQ(dz[size_t(2 * vocab + c)], 0.0f) << "zero-weight row, column " << c;
}

TEST(TrainAttentionFast, MatchesThePlainLoopReference) {
  const AttentionDims a{2, 13, 3, 10};
  const size_t n = size_t(a.batch) * size_t(a.seq_len) * size_t(a.heads) * size_t(a.head_dim);
  const size_t rows = size_t(a.batch) * size_t(a.seq_len) * size_t(a.heads);
  const std::vector<float> q = random_floats(n, 22), k = random_floats(n, 23), v = random_floats(n, 24),
                           dout = random_floats(n, 25);
  std::vector<float> out(n), want_out(n), lse(rows), want_lse(rows);
  attention_forward_fast(q.data(), k.data(), v.data(), a, out.data(), lse.data());
  attention_forward(q.data(), k.data(), v.data(), a, want_out.data(), want_lse.data());
  EXPECT_LT(rel_diff(out, want_out), kMatmulBound);
  EXPECT_LT(rel_diff(lse, want_lse), kMatmulBound);
  std::vector<float> dq(n), dk(n), dv(n), want_dq(n), want_dk(n), want_dv(n);
  attention_backward_fast(q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(), a, dq.data(), dk.data(),
                          dv.data());
  attention_backward(q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(), a, want_dq.data(),
                     want_dk.data(), want_dv.data());
  EXPECT_LT(rel_diff(dq, want_dq), kMatmulBound);
  EXPECT_LT(rel_diff(dk, want_dk), kMatmulBound);
  EXPECT_LT(rel_diff(dv, want_dv), kMatmulBound);
}

TEST(TrainMatmulGrad, ReferenceIsTheTransposedProduct) {
  // dx = dy W and dw = dy^T x written out for a 2x2 case.
  const std::vector<float> dy = {1, 2, 3, 4}, w = {5, 6, 7, 8}, x = {1, -1, 2, 0.5f};
  std::vector<float> dx(4), dw(4);
  ops::matmul_dx_reference(dy.data(), 2, ops::matrix_view(w.data(), DType::F32, 2, 2), dx.data(), false);
  ops::matmul_dw_reference(dy.data(), x.data(), 2, 2, 2, DType::F32, dw.data(), false);
  EXPECT_EQ(dx, (std::vector<float>{1 * 5 + 2 * 7, 1 * 6 + 2 * 8, 3 * 5 + 4 * 7, 3 * 6 + 4 * 8}));
  EXPECT_EQ(dw, (std::vector<float>{1 * 1 + 3 * 2, 1 * -1 + 3 * 0.5f, 2 * 1 + 4 * 2, 2 * -1 + 4 * 0.5f}));
}

}  // namespace
}  // namespace unmask::train

namespace unmask {
namespace {

// The backward's transposed copies: AVX-512 16 x 16 register tiles against the scalar
// loop, bit for bit, on shapes with whole tiles, remainders on either side and none.
TEST(MatmulGrad, Avx512TransposeEqualsScalar) {
  if (!ops::isa_available(ops::Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{16, 16}, {1, 1}, {3, 37}, {37, 3}, {48, 32}, {257, 129},
                            {300, 300}}) {
    std::vector<float> src(size_t(rows * cols));
    for (float& v : src) v = uni(rng);
    std::vector<float> want(src.size(), NAN), got(src.size(), NAN);
    ops::transpose_f32(ops::Isa::kScalar, src.data(), rows, cols, want.data());
    ops::transpose_f32(ops::Isa::kAvx512, src.data(), rows, cols, got.data());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(want[size_t(c * rows + r)], src[size_t(r * cols + c)]);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << rows << "x" << cols << " at " << i;
    // Into bf16 (a NaN and values at rounding ties included), and raw 16-bit values.
    src[0] = NAN;
    if (src.size() > 2) src[2] = 1.00390625f;  // 1 + 2^-8: halfway between two bf16 values
    std::vector<uint16_t> want16(src.size()), got16(src.size(), 7), bits(src.size());
    ops::transpose_f32_to_bf16(ops::Isa::kScalar, src.data(), rows, cols, want16.data());
    ops::transpose_f32_to_bf16(ops::Isa::kAvx512, src.data(), rows, cols, got16.data());
    ASSERT_EQ(got16, want16) << rows << "x" << cols;
    for (size_t i = 0; i < src.size(); ++i) bits[i] = f32_to_bf16(src[i]);
    ops::transpose_u16(ops::Isa::kScalar, bits.data(), rows, cols, want16.data());
    ops::transpose_u16(ops::Isa::kAvx512, bits.data(), rows, cols, got16.data());
    ASSERT_EQ(got16, want16) << rows << "x" << cols;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(want16[size_t(c * rows + r)], bits[size_t(r * cols + c)]);
  }
}

}  // namespace
}  // namespace unmask
