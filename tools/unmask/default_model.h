// tools/unmask/default_model.h — where the CLI finds the shipped default model when
// no -m is given: relative to the running binary (/proc/self/exe), never the working
// directory, so `unmask run -p ...` works from any folder.
#pragma once
#include <string>

namespace unmask::cli {

// The folder name under models/ (see docs/default-model.md).
inline constexpr const char* kDefaultModelName = "unmask-coder-tiny";

// First existing folder among <exe_dir>/../share/unmask/models/NAME (installed),
// <exe_dir>/../models/NAME (build/ in the source tree) and <exe_dir>/../../models/NAME
// (a nested build folder). Throws Error listing the places looked in when none exists.
std::string default_model_dir();

}  // namespace unmask::cli
