// unmask/error.h — the one error type that crosses the library boundary.
//
// Loading, parsing and request validation throw unmask::Error with a single line
// that names the file / tensor / field / value at fault. Inner loops never throw:
// they run on validated input. Front ends catch Error, print what(), exit non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace unmask {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error(message) when cond is false. For boundary checks, not hot loops.
inline void check(bool cond, const std::string& message) {
  if (!cond) throw Error(message);
}

}  // namespace unmask
