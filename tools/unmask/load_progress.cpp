#include "load_progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "progress_bar.h"

namespace unmask::cli {

std::unique_ptr<Model> load_model_warm(const std::string& dir, const LoadOptions& options) {
  auto model = load_model(dir, options);
  const bool tty = isatty(fileno(stderr));
  const auto t0 = std::chrono::steady_clock::now();
  size_t bytes = 0;
  prefetch_weights(*model, [&](size_t done, size_t total) {
    bytes = total;
    if (!tty) return;
    std::fprintf(stderr, "\r  load [%s] %.2f/%.2f GB  %.1f s\033[K", progress_bar(int64_t(done), int64_t(total)).c_str(),
                 double(done) / 1e9, double(total) / 1e9,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (tty && bytes > 0) std::fprintf(stderr, "\r\033[K");
  if (bytes >= (size_t(64) << 20)) std::fprintf(stderr, "  loaded %.2f GB of weights in %.1f s\n", double(bytes) / 1e9, s);
  return model;
}

}  // namespace unmask::cli
