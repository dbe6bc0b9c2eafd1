// Tokenizer: conformance fixtures on every field, the public API (special-token
// roles, parse_special safety, streaming decode), and clear errors on bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "unmask/error.h"
#include "unmask/tokenizer.h"
#include "tokenizer/fixture_check.h"
#include "tokenizer/unicode.h"

namespace unmask {
namespace {

std::string data(const std::string& rel) { return std::string(UNMASK_TEST_DATA) + "/" + rel; }

const Tokenizer& qwen3() {
  static const Tokenizer t = Tokenizer::from_dir(data("tokenizers/qwen3"));
  return t;
}
const Tokenizer& llama3() {
  static const Tokenizer t = Tokenizer::from_dir(data("tokenizers/llama3"));
  return t;
}
const Tokenizer& llada() {
  static const Tokenizer t = Tokenizer::from_dir(data("llada-tiny"));
  return t;
}
const Tokenizer& dream() {
  static const Tokenizer t = Tokenizer::from_dir(data("dream-tiny"));
  return t;
}

std::vector<nlohmann::json> fixture_lines(const std::string& name) {
  std::ifstream f(data("tokenizers/" + name + "/encodings.jsonl"));
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

TEST(TokenizerConformance, AllSharedFixturesPassOnEveryField) {
  int passed = 0;
  std::vector<std::string> failures;
  tok::check_tokenizer_fixtures(data("tokenizers"), [&](const tok::FixtureResult& r) {
    if (r.passed) ++passed;
    else failures.push_back(r.name + ": " + r.message);
  });
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_EQ(passed, 5 * 43);
}

TEST(TokenizerConformance, SingleFixtureDirIsAccepted) {
  EXPECT_TRUE(tok::is_tokenizer_fixture_dir(data("tokenizers")));
  EXPECT_TRUE(tok::is_tokenizer_fixture_dir(data("tokenizers/llada-tiny")));
  EXPECT_FALSE(tok::is_tokenizer_fixture_dir(data("llada-tiny")));
  int passed = 0;
  tok::check_tokenizer_fixtures(data("tokenizers/llada-tiny"), [&](const tok::FixtureResult& r) { passed += r.passed; });
  EXPECT_EQ(passed, 43);
}

TEST(Tokenizer, VocabSizesAndLookups) {
  EXPECT_EQ(qwen3().vocab_size(), 151669);
  EXPECT_EQ(llama3().vocab_size(), 128256);
  EXPECT_EQ(llada().vocab_size(), 512);
  EXPECT_EQ(qwen3().token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(qwen3().id_to_token(151645), "<|im_end|>");
  EXPECT_EQ(llama3().token_to_id("Ġworld"), 1917);
  EXPECT_EQ(llama3().id_to_token(1917), "Ġworld");
  EXPECT_EQ(llama3().token_bytes(1917), " world");
  EXPECT_FALSE(llama3().token_to_id("no such token").has_value());
}

TEST(Tokenizer, SpecialTokenRolesFromConfig) {
  EXPECT_EQ(llada().special_id(TokenRole::kBos), 500);
  EXPECT_EQ(llada().special_id(TokenRole::kEos), 501);
  EXPECT_EQ(llada().special_id(TokenRole::kPad), 501);
  EXPECT_EQ(llada().special_id(TokenRole::kMask), 504);  // <|mdm_mask|>: named by convention
  EXPECT_EQ(llada().special_id(TokenRole::kEot), 509);   // <|eot_id|>
  EXPECT_EQ(dream().special_id(TokenRole::kBos), 510);
  EXPECT_EQ(dream().special_id(TokenRole::kEos), 500);
  EXPECT_EQ(dream().special_id(TokenRole::kMask), 511);  // mask_token in the config
  EXPECT_EQ(dream().special_id(TokenRole::kEot), 502);   // <|im_end|>
  EXPECT_EQ(qwen3().special_id(TokenRole::kEot), 151645);
  EXPECT_FALSE(qwen3().special_id(TokenRole::kMask).has_value());
  EXPECT_TRUE(llada().is_special(504));
  EXPECT_FALSE(llada().is_special(100));
}

TEST(Tokenizer, UserTextCannotForgeSpecialTokens) {
  const std::string typed = "hi <|mdm_mask|> there <|eot_id|>";
  const auto safe = llada().encode(typed, {.parse_special = false, .add_special_tokens = false});
  const auto parsed = llada().encode(typed, {.parse_special = true, .add_special_tokens = false});
  for (int32_t id : safe) EXPECT_FALSE(llada().is_special(id)) << id;
  EXPECT_NE(std::find(parsed.begin(), parsed.end(), 504), parsed.end());
  EXPECT_NE(std::find(parsed.begin(), parsed.end(), 509), parsed.end());
  // Both spell the same text back.
  EXPECT_EQ(llada().decode(safe), typed);
  EXPECT_EQ(llada().decode(parsed), typed);
  const auto q = qwen3().encode("<|im_end|>", {});
  EXPECT_TRUE(std::find(q.begin(), q.end(), 151645) == q.end());
  // Non-special added tokens (qwen3 <tool_call>) are still matched, as in the reference.
  EXPECT_EQ(qwen3().encode("<tool_call>", {}), std::vector<int32_t>{151657});
}

TEST(Tokenizer, InvalidUtf8IsReplacedLikeADecoderWithReplace) {
  const std::string bad = std::string("a\xff") + "b\xe2\x82" + "c";
  const std::string repaired = std::string("a\xEF\xBF\xBD") + "b\xEF\xBF\xBD" + "c";
  EXPECT_EQ(tok::sanitize_utf8(bad), repaired);
  EXPECT_EQ(qwen3().encode(bad), qwen3().encode(repaired));
  EXPECT_EQ(qwen3().decode(qwen3().encode(bad)), repaired);
  // Maximal subparts: an overlong lead and a surrogate each become one U+FFFD per byte run.
  EXPECT_EQ(tok::sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok::sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok::sanitize_utf8("\xF0\x9F\x98"), "\xEF\xBF\xBD");
}

TEST(Tokenizer, DecodeRejectsBadIds) {
  const std::vector<int32_t> neg = {-1}, big = {512};
  EXPECT_THROW(llada().decode(neg), Error);
  EXPECT_THROW(llada().decode(big), Error);
  EXPECT_THROW(llada().id_to_token(9999), Error);
  try {
    llada().decode(big);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("512"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, LongAndPathologicalInputs) {
  // Long runs go through the heap merge and the regex with a large JIT stack.
  const std::string letters(100000, 'a'), spaces(50000, ' '), digits(30000, '7');
  for (const Tokenizer* t : {&qwen3(), &llama3(), &llada(), &dream()}) {
    for (const std::string* s : {&letters, &spaces, &digits}) {
      const auto ids = t->encode(*s);
      EXPECT_EQ(t->decode(ids), *s);
    }
  }
}

TEST(Tokenizer, ConcurrentEncodingMatchesSerial) {
  std::vector<std::string> texts;
  for (const auto& e : fixture_lines("qwen3")) texts.push_back(e["text"].get<std::string>());
  std::vector<std::vector<int32_t>> serial;
  for (const auto& t : texts) serial.push_back(qwen3().encode(t));
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      int good = 0;
      for (size_t i = 0; i < texts.size(); ++i) good += qwen3().encode(texts[i]) == serial[i];
      ok[static_cast<size_t>(k)] = good;
    });
  }
  for (auto& th : threads) th.join();
  for (int v : ok) EXPECT_EQ(v, static_cast<int>(texts.size()));
}

// Streams ids one at a time; every chunk must be valid UTF-8, the total the full decode.
void expect_stream_matches(const Tokenizer& t, const std::vector<int32_t>& ids, const DecodeOptions& opts) {
  StreamDecoder sd(t, opts);
  std::string all;
  for (int32_t id : ids) {
    const std::string chunk = sd.push(id);
    EXPECT_TRUE(tok::is_valid_utf8(chunk));
    all += chunk;
  }
  all += sd.finish();
  EXPECT_EQ(all, t.decode(ids, opts));
}

TEST(StreamDecoder, MatchesFullDecodeOnFixtures) {
  for (const char* name : {"qwen3", "llama3", "gpt2", "llada-tiny", "dream-tiny"}) {
    const std::string dir = std::string(name).find("tiny") != std::string::npos ? data(name) : data(std::string("tokenizers/") + name);
    const Tokenizer t = Tokenizer::from_dir(dir);
    for (const auto& e : fixture_lines(name)) {
      const auto ids = e["ids"].get<std::vector<int32_t>>();
      expect_stream_matches(t, ids, {});
      expect_stream_matches(t, ids, {.skip_special = true});
    }
  }
}

TEST(StreamDecoder, HoldsBackPartialCharactersAndCleanupSpaces) {
  // An emoji split over byte tokens: nothing is emitted until it is whole.
  const auto ids = llada().encode("x😀");
  StreamDecoder sd(llada());
  std::string got;
  for (int32_t id : ids) got += sd.push(id);
  got += sd.finish();
  EXPECT_EQ(got, "x😀");
  // llama3 cleans " ," etc.: the space before a comma is held until the comma comes.
  const auto l = llama3().encode("a , b");
  expect_stream_matches(llama3(), l, {});
  EXPECT_EQ(llama3().decode(l), "a, b");
  // A dangling partial character becomes U+FFFD at finish().
  StreamDecoder sd2(llada());
  const auto emoji = llada().encode("😀");
  ASSERT_GT(emoji.size(), 1u);
  EXPECT_EQ(sd2.push(emoji[0]), "");
  EXPECT_EQ(sd2.finish(), "\xEF\xBF\xBD");
}

// --- bad tokenizer files: one clear line, never a crash ---------------------------

std::string tiny_json() {
  std::ifstream f(data("llada-tiny/tokenizer.json"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void expect_load_error(const std::string& json_text, const std::string& fragment) {
  try {
    Tokenizer::from_json(json_text, "{}", "bad.json");
    ADD_FAILURE() << "no error for fragment " << fragment;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(fragment), std::string::npos) << m;
    EXPECT_NE(m.find("bad.json"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(TokenizerErrors, MalformedFilesGiveClearErrors) {
  const std::string good = tiny_json();
  auto edit = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t p = s.find(from);
    EXPECT_NE(p, std::string::npos) << from;
    return s.replace(p, from.size(), to);
  };
  expect_load_error(good.substr(0, good.size() / 2), "end of input");
  expect_load_error("[1,2]", "not a JSON object");
  expect_load_error("{}", "model");
  expect_load_error(edit("\"type\": \"BPE\"", "\"type\": \"WordPiece\""), "WordPiece");
  expect_load_error(edit("\"type\": \"Split\"", "\"type\": \"Frobnicate\""), "Frobnicate");
  expect_load_error(edit("\"normalizer\": null", "\"normalizer\": {\"type\": \"NFKC\"}"), "NFKC");
  expect_load_error(edit("\"Regex\": \"", "\"Regex\": \"(unclosed"), "regex");
  expect_load_error(edit("\"Ā\": 0", "\"Ā\": \"zero\""), "model.vocab");
  expect_load_error(edit("\"Ā\": 0", "\"Ā\": -3"), "model.vocab");
  expect_load_error(edit("\"id\": 500,", "\"id\": \"x\","), "added_tokens[0]");
  expect_load_error(edit("\"merges\": [", "\"merges\": [\"nospace\","), "model.merges[0]");
  expect_load_error(edit("\"merges\": [", "\"merges\": [[\"a\"],"), "model.merges");
  nlohmann::json doc = nlohmann::json::parse(good);
  doc["decoder"] = {{"type", "Mystery"}};
  expect_load_error(doc.dump(), "Mystery");
  doc = nlohmann::json::parse(good);
  doc["post_processor"] = {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", "<nope>"}}}}}}};
  expect_load_error(doc.dump(), "<nope>");
  doc = nlohmann::json::parse(good);
  doc["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
  expect_load_error(doc.dump(), "Sideways");
  expect_load_error(std::string(300, '[') + std::string(300, ']'), "not a JSON object");
  expect_load_error("{\"a\":" + std::string(300, '[') + std::string(300, ']') + "}", "nesting too deep");
  expect_load_error("{\"a\": \"\xff\"}", "UTF-8");
  EXPECT_THROW(Tokenizer::from_dir(data("no-such-model")), Error);
}

TEST(TokenizerErrors, BadConfigIsReported) {
  try {
    Tokenizer::from_json(tiny_json(), "{\"bos_token\": 5}", "t.json");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bos_token"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tokenizer::from_json(tiny_json(), "{not json", "t.json"), Error);
}

TEST(TokenizerLoad, LargeVocabularyLoadsQuickly) {
  const auto t0 = std::chrono::steady_clock::now();
  const Tokenizer t = Tokenizer::from_dir(data("tokenizers/qwen3"));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Budget 0.5 s on a normal build; generous here so sanitizer / debug builds pass.
  EXPECT_LT(s, 5.0);
  EXPECT_EQ(t.vocab_size(), 151669);
}

}  // namespace
}  // namespace unmask
