// Tokenizer building blocks on their own: pre-tokenizer steps and Split behaviours,
// the Oniguruma -> PCRE2 regex translation, NFC / NFD, decoder chains, and the
// post-processor (BOS) with chat templates that already write their BOS.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "unmask/chat_template.h"
#include "unmask/error.h"
#include "unmask/tokenizer.h"
#include "tokenizer/decoder.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace unmask::tok {
namespace {

using json = nlohmann::json;

std::vector<std::string> pieces(const json& cfg, std::string_view text) {
  auto pt = PreTokenizer::create(cfg, "test");
  Pieces p;
  pt->split(text, 0, p);
  std::vector<std::string> out;
  for (auto v : p.items) out.emplace_back(pt->byte_level_output() ? bytes_to_byte_level(v) : std::string(v));
  return out;
}

json split(const std::string& regex, const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", behavior}, {"invert", invert}};
}

using V = std::vector<std::string>;

TEST(PreTokenizer, SplitBehaviours) {
  EXPECT_EQ(pieces(split("-", "Isolated"), "a-b--c"), (V{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(pieces(split("-", "Removed"), "a-b--c"), (V{"a", "b", "c"}));
  EXPECT_EQ(pieces(split("-", "MergedWithPrevious"), "a-b--c"), (V{"a-", "b-", "-", "c"}));
  EXPECT_EQ(pieces(split("-", "MergedWithNext"), "a-b--c"), (V{"a", "-b", "-", "-c"}));
  EXPECT_EQ(pieces(split("-", "Contiguous"), "a-b--c"), (V{"a", "-", "b", "--", "c"}));
  EXPECT_EQ(pieces(split("[a-z]+", "Isolated", true), "ab-cd"), (V{"ab", "cd"}));
  const json str_pattern = {{"type", "Split"}, {"pattern", {{"String", "."}}}, {"behavior", "Isolated"}};
  EXPECT_EQ(pieces(str_pattern, "a.b"), (V{"a", ".", "b"}));  // a String pattern is literal
}

TEST(PreTokenizer, DigitsByteLevelAndSequence) {
  EXPECT_EQ(pieces({{"type", "Digits"}, {"individual_digits", true}}, "ab12c3"), (V{"ab", "1", "2", "c", "3"}));
  EXPECT_EQ(pieces({{"type", "Digits"}, {"individual_digits", false}}, "ab12c3"), (V{"ab", "12", "c", "3"}));
  const json bl = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_EQ(pieces(bl, "Hello world's"), (V{"ĠHello", "Ġworld", "'s"}));
  const json seq = {{"type", "Sequence"},
                    {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}},
                                       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  EXPECT_EQ(pieces(seq, "x 42"), (V{"xĠ", "4", "2"}));
  EXPECT_EQ(pieces({{"type", "WhitespaceSplit"}}, " a  b\tc "), (V{"a", "b", "c"}));
  EXPECT_EQ(pieces({{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}}, "a b"), (V{"▁a▁b"}));
  EXPECT_THROW(PreTokenizer::create({{"type", "Nope"}}, "t"), Error);
}

std::vector<std::string> matches(const std::string& onig, std::string_view text) {
  Regex re(translate_pattern(onig, "t"), "t");
  std::vector<std::string> out;
  re.for_each_match(text, [&](size_t s, size_t e) { out.emplace_back(text.substr(s, e - s)); });
  return out;
}

TEST(Regex, OnigurumaConstructsKeepTheirMeaning) {
  // (?i: ...) folds ASCII letters only, as the reference does (no long s / Kelvin sign).
  EXPECT_EQ(matches("(?i:'s|'ll)", "it'S we'LL x'ſ"), (V{"'S", "'LL"}));
  // \s is Unicode White_Space: NEL yes, BOM no.
  EXPECT_EQ(matches("\\s+", "a\xC2\x85" "b\xEF\xBB\xBF" "c"), (V{"\xC2\x85"}));
  EXPECT_EQ(matches("\\p{N}{1,3}", "12345"), (V{"123", "45"}));
  EXPECT_EQ(matches("\\h+", "xx1aF9zz"), (V{"1aF9"}));  // Oniguruma \h: hex digit
  EXPECT_EQ(matches("a{2}+", "aaaaa"), (V{"aaaa"}));      // (?:a{2})+, not possessive
  EXPECT_EQ(matches("x*", "ab"), (V{"", "", ""}));        // empty matches advance one char
  EXPECT_EQ(matches("^b", "a\nb"), (V{"b"}));             // ^ is a line start
  EXPECT_THROW(translate_pattern("[a[b]]", "t"), Error);
  EXPECT_THROW(Regex("(", "t"), Error);
}

TEST(Unicode, CanonicalNormalization) {
  EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                 // e + acute -> é
  EXPECT_EQ(nfd("\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // Hangul L V T -> 각
  EXPECT_EQ(nfc("a\xCC\x96\xCC\x81"), "\xC3\xA1\xCC\x96");   // reordered marks still compose
  EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");                // Angstrom sign -> Å (singleton)
  EXPECT_TRUE(is_nfc_quick("plain ascii"));
}

TEST(Decoder, ChainsOfSteps) {
  const json chain = {{"type", "Sequence"},
                      {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                                    {{"type", "ByteFallback"}},
                                    {{"type", "Fuse"}},
                                    {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  auto d = Decoder::create(chain, "t");
  std::vector<DecodeToken> toks = {{"▁Hello", false}, {"<0xE2>", false}, {"<0x82>", false}, {"<0xAC>", false}, {"▁x", false}};
  EXPECT_EQ(d->decode(toks), "Hello€ x");
  EXPECT_EQ(clean_up_tokenization("a , b . c 's d n't"), "a, b. c's dn't");
}

std::string llada_json() {
  std::ifstream f(std::string(UNMASK_TEST_DATA) + "/llada-tiny/tokenizer.json");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string llada_config() {
  std::ifstream f(std::string(UNMASK_TEST_DATA) + "/llada-tiny/tokenizer_config.json");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(PostProcessor, TemplateProcessingAddsBosOnceAndChatTemplatesDoNotDoubleIt) {
  json doc = json::parse(llada_json());
  doc["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", "<|startoftext|>"}, {"type_id", 0}}}},
                                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
  const Tokenizer t = Tokenizer::from_json(doc.dump(), llada_config(), "bos.json");
  const auto with = t.encode("hi", {.parse_special = false, .add_special_tokens = true});
  const auto without = t.encode("hi", {.parse_special = false, .add_special_tokens = false});
  ASSERT_EQ(with.size(), without.size() + 1);
  EXPECT_EQ(with[0], 500);
  const ChatPrompt p = apply_chat_template(t, {{"user", "hi"}});
  EXPECT_EQ(std::count(p.ids.begin(), p.ids.end(), 500), 1);  // the template's own bos_token only
  EXPECT_EQ(p.ids[0], 500);
}

TEST(Bpe, IgnoreMergesEmitsWholeTokens) {
  // With ignore_merges, a pre-token that is a vocabulary entry is emitted whole even
  // when the merges would split it differently.
  json doc = json::parse(llada_json());
  const Tokenizer plain = Tokenizer::from_json(doc.dump(), "{}", "a.json");
  doc["model"]["ignore_merges"] = true;
  doc["model"]["vocab"]["Ġzzq"] = 600;
  const Tokenizer im = Tokenizer::from_json(doc.dump(), "{}", "b.json");
  EXPECT_EQ(im.encode(" zzq"), std::vector<int32_t>{600});
  EXPECT_NE(plain.encode(" zzq"), std::vector<int32_t>{600});
  EXPECT_EQ(im.decode(std::vector<int32_t>{600}), " zzq");
}

}  // namespace
}  // namespace unmask::tok
