// ops/cpu/peak.cpp — runs the peak probes on N threads and times them.
//
// Compute probes: the iteration count is calibrated on one thread to last about
// seconds_per_probe of CPU time, then every thread runs that count at once, three times;
// the figure is the best trial's sum of each thread's work / its own CPU time, so that on a shared machine
// time-slicing with other processes does not lower the peak (the execution units are
// a per-core resource). Equal to total work / wall time on an idle machine. Copy probe: two buffers of copy_bytes,
// first-touched by the threads that copy them, copied in per-thread slices until
// seconds_per_probe has passed.
#include "ops/cpu/peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>

namespace unmask::ops {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

using ProbeFn = double (*)(long);

// Sum over threads of (work / that thread's CPU time): the rate of the execution units
// while the probe runs on them, not counting time the OS gave to other processes.
double run_compute_probe(ProbeFn fn, int threads, double seconds) {
  long iters = 1 << 12;
  for (;;) {  // calibrate: grow until one run is long enough to time reliably
    const double t0 = thread_cpu_seconds();
    fn(iters);
    const double t = thread_cpu_seconds() - t0;
    if (t > 0.02 || iters > (1L << 40)) {
      iters = long(double(iters) * seconds / (t > 0 ? t : 1e-9));
      break;
    }
    iters *= 4;
  }
  if (iters < 1) iters = 1;
  // Best of three trials: a peak is what the units can do, and a trial that shared its
  // core with an interrupt or a neighbouring VM's burst (seen: half the rate) is not it.
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) {
    double rate = 0;
#pragma omp parallel num_threads(threads) reduction(+ : rate)
    {
      fn(iters / 64);  // wake every thread (and the clock) before timing
#pragma omp barrier
      const double t0 = thread_cpu_seconds();
      const double work = fn(iters);
      rate += work / (thread_cpu_seconds() - t0);
    }
    best = std::max(best, rate);
  }
  return best * 1e-9;
}

double run_copy_probe(size_t bytes, int threads, double seconds) {
  std::unique_ptr<char[]> src(new char[bytes]), dst(new char[bytes]);
  const size_t slice = bytes / size_t(threads);
  auto copy_all = [&](int tid) {
    std::memcpy(dst.get() + slice * size_t(tid), src.get() + slice * size_t(tid), slice);
  };
#pragma omp parallel num_threads(threads)
  {  // first touch by the copying thread, so pages are mapped before timing
    int tid = omp_get_thread_num();
    std::memset(src.get() + slice * size_t(tid), tid + 1, slice);
    std::memset(dst.get() + slice * size_t(tid), 0, slice);
  }
  long rounds = 0;
  auto t0 = Clock::now();
  double t = 0;
  while (t < seconds) {
#pragma omp parallel num_threads(threads)
    copy_all(omp_get_thread_num());
    ++rounds;
    t = seconds_since(t0);
  }
  return double(rounds) * 2.0 * double(slice) * double(threads) / t * 1e-9;
}

}  // namespace

PeakFigures measure_peaks(const PeakOptions& options) {
  PeakFigures f;
  const int threads = options.threads > 0 ? options.threads : 1;
  const double secs = options.seconds_per_probe;
  f.threads = threads;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    f.isa = "avx512";
    f.fma_f32_gflops = run_compute_probe(peak_detail::fma_f32_avx512, threads, secs);
    if (__builtin_cpu_supports("avx512bf16"))
      f.bf16_dot_gflops = run_compute_probe(peak_detail::bf16_dot_avx512, threads, secs);
    if (__builtin_cpu_supports("avx512vnni"))
      f.int8_dot_gops = run_compute_probe(peak_detail::int8_dot_avx512, threads, secs);
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    f.isa = "avx2";
    f.fma_f32_gflops = run_compute_probe(peak_detail::fma_f32_avx2, threads, secs);
    f.int8_dot_gops = run_compute_probe(peak_detail::int8_dot_avx2, threads, secs);
  } else {
    f.isa = "scalar";
  }
  f.copy_gbps = run_copy_probe(options.copy_bytes, threads, secs);
  return f;
}

}  // namespace unmask::ops
