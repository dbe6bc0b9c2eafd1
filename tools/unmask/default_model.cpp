// tools/unmask/default_model.cpp — see default_model.h.
#include "default_model.h"

#include <filesystem>
#include <vector>

#include "unmask/error.h"

namespace unmask::cli {

std::string default_model_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("no -m/--model given, and /proc/self/exe cannot be read to find the default model: " + ec.message());
  const fs::path dir = exe.parent_path();
  const std::vector<fs::path> candidates = {dir / ".." / "share" / "unmask" / "models" / kDefaultModelName,
                                            dir / ".." / "models" / kDefaultModelName,
                                            dir / ".." / ".." / "models" / kDefaultModelName};
  std::string looked;
  for (const fs::path& c : candidates) {
    if (fs::is_regular_file(c / "config.json", ec)) return c.lexically_normal().string();
    looked += (looked.empty() ? "" : ", ") + c.lexically_normal().string();
  }
  throw Error("no -m/--model given and the default model " + std::string(kDefaultModelName) +
              " is not installed next to the binary (looked in " + looked + "); pass -m MODEL_DIR");
}

}  // namespace unmask::cli
