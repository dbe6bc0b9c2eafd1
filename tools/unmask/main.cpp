// unmask — command-line front end. Subcommands live in cmd_*.cpp.
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
