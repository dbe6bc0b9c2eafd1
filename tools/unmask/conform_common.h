// tools/unmask/conform_common.h — shared result counting for `unmask conform`.
#pragma once
#include <cstdio>
#include <string>

namespace unmask::cli {

struct ConformCounts {
  int passed = 0, failed = 0, skipped = 0;
  void pass(const std::string& name) {
    ++passed;
    std::printf("PASS %s\n", name.c_str());
    std::fflush(stdout);
  }
  void fail(const std::string& name, const std::string& what) {
    ++failed;
    std::printf("FAIL %s: %s\n", name.c_str(), what.c_str());
    std::fflush(stdout);
  }
  void skip(const std::string& name, const std::string& why) {
    ++skipped;
    std::printf("SKIP %s: %s\n", name.c_str(), why.c_str());
    std::fflush(stdout);
  }
};

// Tokenizer fixtures (tools/unmask/conform_tokenizer.cpp): a directory holding
// encodings.jsonl (+ tokenizer.json there or as named by the parent manifest.json),
// or a directory of such directories with a manifest.json (shared/fixtures/tokenizers).
bool is_tokenizer_fixture_dir(const std::string& dir);
void run_tokenizer_conform(const std::string& dir, ConformCounts& counts);

}  // namespace unmask::cli
