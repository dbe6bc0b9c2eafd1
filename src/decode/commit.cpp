#include "decode/commit.h"

#include <functional>

namespace unmask::decode {

int factor_rule_count(std::vector<double> conf, double factor) {
  const int n = int(conf.size());
  if (n == 0) return 0;  // upstream indexes an empty list here; callers never pass none
  std::sort(conf.begin(), conf.end(), std::greater<double>());
  int i = 0;
  for (; i < n; ++i) {
    const double th = i == 0 ? -1.0 : 1.0 - factor / double(i + 2);
    if (conf[size_t(i)] < th) break;
  }
  if (i == n) i = n - 1;  // Python's loop variable keeps its last value when nothing breaks
  if (i == 0 || i == n - 1) ++i;
  return i;
}

}  // namespace unmask::decode
