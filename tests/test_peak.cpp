// Peak probes: each probe that the CPU supports reports a positive, finite rate.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/cpu/peak.h"

namespace unmask::ops {
namespace {

TEST(Peak, ProbesReportPositiveRates) {
  PeakOptions o;
  o.threads = 1;
  o.seconds_per_probe = 0.02;  // short: this checks the plumbing, not the figures
  o.copy_bytes = size_t(16) << 20;
  const PeakFigures f = measure_peaks(o);
  EXPECT_EQ(f.threads, 1);
  if (f.isa == "scalar") GTEST_SKIP() << "no SIMD probes on this CPU";
  EXPECT_GT(f.fma_f32_gflops, 0.5);
  EXPECT_TRUE(std::isfinite(f.fma_f32_gflops));
  EXPECT_GT(f.int8_dot_gops, 0.5);
  if (__builtin_cpu_supports("avx512bf16")) {
    // VDPBF16PS does twice the FLOP of an FMA per lane pair; it is never slower per
    // FLOP than f32 FMA on any core that has it, so a figure below half the FMA rate
    // would mean a mis-counted probe.
    EXPECT_GT(f.bf16_dot_gflops, 0.5 * f.fma_f32_gflops);
  }
  EXPECT_GT(f.copy_gbps, 0.1);
}

}  // namespace
}  // namespace unmask::ops
