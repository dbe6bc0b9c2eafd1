// tools/unmask/token_args.h — parsing of token-id lists given on the command line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace unmask::cli {

// "1,2, 3" -> {1,2,3}. Throws Error naming the bad element; ids must be in [0, vocab).
std::vector<int32_t> parse_id_list(const std::string& text, int vocab);

}  // namespace unmask::cli
