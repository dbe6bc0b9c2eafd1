// Placeholder until implemented.
#include "commands.h"
#include "unmask/error.h"
namespace unmask::cli {
void register_run(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "not implemented yet");
  cmd->callback([] { throw Error("'run' is not implemented yet"); });
}
}  // namespace unmask::cli
