// ops/cpu/peak.h — measured machine peaks, the yardstick for roofline percentages.
//
// Each probe is a register-only (or, for bandwidth, streaming) loop run for about
// `seconds_per_probe` (compute probes: best of three such trials) on `threads` OpenMP
// threads at once; the figures are totals over all threads. Compute probes are timed by
// each thread's CPU time (robust to other processes time-slicing the cores); the copy
// probe, a shared resource, by wall time. Nothing is read from spec sheets: a figure of
// 0 means the probe could not run on this CPU (e.g. no AVX512_BF16), never a guess.
// Owns nothing; the copy buffer of the bandwidth probe lives only during the call.
#pragma once
#include <cstddef>
#include <string>

namespace unmask::ops {

struct PeakOptions {
  int threads = 1;
  double seconds_per_probe = 0.2;
  // Bytes of each of the two buffers of the copy probe; must be much larger than the
  // last-level cache so the loop measures DRAM, not cache.
  size_t copy_bytes = size_t(256) << 20;
};

struct PeakFigures {
  int threads = 0;
  std::string isa;            // "avx512" / "avx2" / "scalar": what the compute probes used
  double fma_f32_gflops = 0;  // f32 FMA: 2 FLOP per lane per instruction
  double bf16_dot_gflops = 0; // VDPBF16PS zmm: 64 FLOP per instruction (32 pairs x mul+add)
  double int8_dot_gops = 0;   // VPDPBUSD zmm (or AVX-VNNI ymm): 128 ops per zmm instruction
  double copy_gbps = 0;       // memcpy of a buffer >> L3: bytes read + bytes written per s
};

PeakFigures measure_peaks(const PeakOptions& options);
inline PeakFigures measure_peaks(int threads) {
  PeakOptions o;
  o.threads = threads;
  return measure_peaks(o);
}

// Per-ISA probe loops (peak_avx512.cpp / peak_avx2.cpp). Each runs `iters` iterations
// on the calling thread and returns the FLOP (or int ops) it performed.
namespace peak_detail {
double fma_f32_avx512(long iters);
double bf16_dot_avx512(long iters);
double int8_dot_avx512(long iters);
double fma_f32_avx2(long iters);
double int8_dot_avx2(long iters);  // AVX2 has no dot instruction: vpmaddubsw+vpmaddwd+vpaddd
}  // namespace peak_detail

}  // namespace unmask::ops
