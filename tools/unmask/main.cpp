// unmask — command-line front end. Subcommands live in cmd_*.cpp.
#include <malloc.h>

#include <cstdio>
#include <exception>

#include "commands.h"
#include "unmask/error.h"

namespace unmask::cli {
int& exit_code() {
  static int code = 0;
  return code;
}
}  // namespace unmask::cli

int main(int argc, char** argv) {
  // A forward allocates its activation buffers (a few hundred KiB to tens of MiB) and frees
  // them when it returns. With glibc's defaults the larger ones are mmapped or trimmed back
  // to the OS every time, so each forward page-faults its buffers in again (~5% of a small
  // model's decode step, perf). Keep freed memory in the heap for the next forward instead:
  // the process holds on to its peak working set, which is what a server wants.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  CLI::App app{"unmask: run, serve and train diffusion language models"};
  app.require_subcommand(1);
  unmask::cli::register_run(app);
  unmask::cli::register_forward(app);
  unmask::cli::register_inspect(app);
  unmask::cli::register_conform(app);
  unmask::cli::register_bench(app);
  unmask::cli::register_tokenize(app);
  unmask::cli::register_train_tokenizer(app);
  unmask::cli::register_eval(app);
  unmask::cli::register_train(app);
  unmask::cli::register_serve(app);
  unmask::cli::register_quantize(app);
  unmask::cli::register_devices(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const unmask::Error& e) {
    std::fprintf(stderr, "unmask: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unmask: internal error: %s\n", e.what());
    return 2;
  }
  return unmask::cli::exit_code();
}
