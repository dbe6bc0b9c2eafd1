// Placeholder until implemented.
#include "commands.h"
#include "unmask/error.h"
namespace unmask::cli {
void register_conform(CLI::App& app) {
  auto* cmd = app.add_subcommand("conform", "not implemented yet");
  cmd->callback([] { throw Error("'conform' is not implemented yet"); });
}
}  // namespace unmask::cli
