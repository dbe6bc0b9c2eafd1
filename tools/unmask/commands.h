// tools/unmask/commands.h — the CLI's subcommands, one file each (cmd_<name>.cpp).
//
// Each register_* adds its subcommand to the app and stores the callback that
// runs it. Callbacks return the process exit code via CliResult; errors are
// thrown as unmask::Error and printed by main as one line.
#pragma once
#include <CLI/CLI.hpp>

namespace unmask::cli {

void register_run(CLI::App& app);
void register_forward(CLI::App& app);
void register_inspect(CLI::App& app);
void register_conform(CLI::App& app);
void register_bench(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_train_tokenizer(CLI::App& app);
void register_eval(CLI::App& app);
void register_train(CLI::App& app);
void register_serve(CLI::App& app);
void register_quantize(CLI::App& app);
void register_devices(CLI::App& app);

// Adds --device cpu|cuda to a command that runs forwards; an unavailable device fails the
// parse with a message naming why.
void add_device_option(CLI::App* cmd);

// Set by a subcommand whose outcome is not plain success (e.g. conform failures).
int& exit_code();

}  // namespace unmask::cli
