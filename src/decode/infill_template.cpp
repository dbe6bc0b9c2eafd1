// parse_infill_template: text with `{mask:N}` holes -> segments (see unmask/decode.h).
// Backslash escapes are resolved first within text, so `\{` is not an escape: braces
// are escaped by doubling (`{{`), which keeps code like `print(f"{x}")` writable as
// `print(f"{{x}")`.
#include <algorithm>
#include <cctype>

#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {

std::vector<InfillSegment> parse_infill_template(const std::string& t) {
  std::vector<InfillSegment> out;
  std::string text;
  auto flush = [&] {
    if (!text.empty()) out.push_back({std::move(text), 0});
    text.clear();
  };
  const std::string kHole = "{mask:";
  for (size_t i = 0; i < t.size();) {
    const char c = t[i];
    if (c == '\\' && i + 1 < t.size() && (t[i + 1] == 'n' || t[i + 1] == 't' || t[i + 1] == '\\')) {
      text += t[i + 1] == 'n' ? '\n' : t[i + 1] == 't' ? '\t' : '\\';
      i += 2;
    } else if (c == '{' && i + 1 < t.size() && t[i + 1] == '{') {
      text += '{';
      i += 2;
    } else if (c == '{') {
      check(t.compare(i, kHole.size(), kHole) == 0,
            "infill template: '{' at offset " + std::to_string(i) + " starts neither {mask:N} nor {{ (a literal '{')");
      size_t j = i + kHole.size();
      int n = 0;
      // Capped so a long digit run cannot overflow; callers check the canvas against the context.
      while (j < t.size() && std::isdigit(static_cast<unsigned char>(t[j])))
        n = std::min(n * 10 + (t[j++] - '0'), 100000000);
      check(j > i + kHole.size() && j < t.size() && t[j] == '}' && n >= 1,
            "infill template: malformed hole at offset " + std::to_string(i) + " (expected {mask:N} with N >= 1)");
      flush();
      out.push_back({"", n});
      i = j + 1;
    } else {
      text += c;
      ++i;
    }
  }
  flush();
  return out;
}

}  // namespace unmask
