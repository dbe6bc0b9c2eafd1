#include "token_args.h"

#include <cerrno>
#include <cstdlib>

#include "unmask/error.h"

namespace unmask::cli {

std::vector<int32_t> parse_id_list(const std::string& text, int vocab) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    item = a == std::string::npos ? "" : item.substr(a, b - a + 1);
    if (item.empty()) throw Error("--ids: empty element at position " + std::to_string(ids.size()));
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE) throw Error("--ids: '" + item + "' is not an integer");
    if (v < 0 || v >= vocab)
      throw Error("--ids: token id " + item + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    ids.push_back(int32_t(v));
    pos = comma + 1;
  }
  return ids;
}

}  // namespace unmask::cli
