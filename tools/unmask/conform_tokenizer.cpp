// tools/unmask/conform_tokenizer.cpp — `unmask conform` on tokenizer fixtures:
// one PASS/FAIL line per encodings.jsonl line (all fields checked).
#include "conform_common.h"
#include "tokenizer/fixture_check.h"

namespace unmask::cli {

bool is_tokenizer_fixture_dir(const std::string& dir) { return tok::is_tokenizer_fixture_dir(dir); }

void run_tokenizer_conform(const std::string& dir, ConformCounts& counts) {
  tok::check_tokenizer_fixtures(dir, [&](const tok::FixtureResult& r) {
    if (r.skipped) counts.skip("tokenizer " + r.name, r.message);
    else if (r.passed) counts.pass("tokenizer " + r.name);
    else counts.fail("tokenizer " + r.name, r.message);
  });
}

}  // namespace unmask::cli
