// tools/unmask/load_progress.h — loading a model for commands that run forwards.
#pragma once
#include <memory>
#include <string>

#include "unmask/model.h"

namespace unmask::cli {

// load_model, then prefetch_weights with a progress bar on stderr (redrawn on a terminal;
// one closing line for files of 64 MiB and more), so the first forward starts warm.
std::unique_ptr<Model> load_model_warm(const std::string& dir, const LoadOptions& options = {});

}  // namespace unmask::cli
