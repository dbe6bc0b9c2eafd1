// Placeholder until implemented.
#include "commands.h"
#include "unmask/error.h"
namespace unmask::cli {
void register_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "not implemented yet");
  cmd->callback([] { throw Error("'bench' is not implemented yet"); });
}
}  // namespace unmask::cli
