// libFuzzer target for the tokenizer: arbitrary bytes as text to encode (checking
// the byte-exact round trip and the streaming decoder), as token ids to decode, as a
// tokenizer.json to load and as a chat template to render. Every failure must be an
// unmask::Error, never a crash, hang or sanitizer report.
//
// fuzz-sources: src/tokenizer/*.cpp
// fuzz-libs: -lpcre2-8
//
// Build (from the repository root):
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
//       fuzz/fuzz_tokenizer.cpp src/tokenizer/*.cpp -lpcre2-8 -o build-fuzz/fuzz_tokenizer
// Fixtures are read from tests/data (override with UNMASK_FUZZ_DATA=<dir>).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "unmask/chat_template.h"
#include "unmask/error.h"
#include "unmask/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

struct Fixtures {
  unmask::Tokenizer llada, dream;
};

const Fixtures& fixtures() {
  static const Fixtures f = [] {
    const char* env = std::getenv("UNMASK_FUZZ_DATA");
    const std::string dir = env ? env : "tests/data";
    return Fixtures{unmask::Tokenizer::from_dir(dir + "/llada-tiny"), unmask::Tokenizer::from_dir(dir + "/dream-tiny")};
  }();
  return f;
}

void require(bool ok) {
  if (!ok) std::abort();
}

void check_round_trip(const unmask::Tokenizer& tok, std::string_view text, bool parse_special) {
  const auto ids = tok.encode(text, {.parse_special = parse_special, .add_special_tokens = false});
  const std::string decoded = tok.decode(ids, {.skip_special = false, .clean_up_spaces = false});
  // llada-tiny has no normalizer: decoding gives back the (repaired) input exactly.
  require(decoded == unmask::tok::sanitize_utf8(text));
  unmask::StreamDecoder stream(tok, {.skip_special = false, .clean_up_spaces = false});
  std::string streamed;
  for (int32_t id : ids) {
    const std::string chunk = stream.push(id);
    require(unmask::tok::is_valid_utf8(chunk));
    streamed += chunk;
  }
  streamed += stream.finish();
  require(streamed == decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Fixtures& fx = fixtures();
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 5) {
      case 0: check_round_trip(fx.llada, body, true); break;
      case 1: check_round_trip(fx.llada, body, false); break;
      case 2: {
        // NFC may change the text: only require success and valid UTF-8 out.
        const auto ids = fx.dream.encode(body, {.parse_special = true, .add_special_tokens = true});
        require(unmask::tok::is_valid_utf8(fx.dream.decode(ids, {.skip_special = true})));
        break;
      }
      case 3: {
        // Two bytes per id, some beyond the vocabulary on purpose.
        std::vector<int32_t> ids;
        for (size_t i = 0; i + 1 < body.size(); i += 2) {
          ids.push_back(static_cast<int32_t>((static_cast<uint8_t>(body[i]) << 8 | static_cast<uint8_t>(body[i + 1])) % 530) - 4);
        }
        try {
          require(unmask::tok::is_valid_utf8(fx.llada.decode(ids)));
        } catch (const unmask::Error&) {
        }
        break;
      }
      case 4: {
        try {
          (void)unmask::Tokenizer::from_json(body, "{}", "fuzz.json");
        } catch (const unmask::Error&) {
        }
        const unmask::ChatTemplate tmpl(body, "fuzz-template");
        (void)tmpl.render(R"({"messages": [{"role": "user", "content": "hi <|x|>"}], "add_generation_prompt": true,)"
                          R"( "bos_token": "<s>", "items": [3, 1, 2], "n": 5})");
        break;
      }
    }
  } catch (const unmask::Error&) {
  }
  return 0;
}
