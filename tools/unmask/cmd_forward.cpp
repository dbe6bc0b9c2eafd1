// Placeholder until implemented.
#include "commands.h"
#include "unmask/error.h"
namespace unmask::cli {
void register_forward(CLI::App& app) {
  auto* cmd = app.add_subcommand("forward", "not implemented yet");
  cmd->callback([] { throw Error("'forward' is not implemented yet"); });
}
}  // namespace unmask::cli
