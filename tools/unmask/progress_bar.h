// tools/unmask/progress_bar.h — the CLI's progress bars ("[#######       ]").
#pragma once
#include <cstdint>
#include <string>

namespace unmask::cli {

// `width` characters: '#' for the done share of `total`, blanks for the rest (all '#'
// when total is 0).
inline std::string progress_bar(int64_t done, int64_t total, int width = 30) {
  const int filled = total > 0 ? int(int64_t(width) * done / total) : width;
  return std::string(size_t(filled), '#') + std::string(size_t(width - filled), ' ');
}

}  // namespace unmask::cli
