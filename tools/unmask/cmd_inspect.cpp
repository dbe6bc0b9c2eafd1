// Placeholder until implemented.
#include "commands.h"
#include "unmask/error.h"
namespace unmask::cli {
void register_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "not implemented yet");
  cmd->callback([] { throw Error("'inspect' is not implemented yet"); });
}
}  // namespace unmask::cli
