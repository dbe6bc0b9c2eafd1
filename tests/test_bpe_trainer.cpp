// BPE training (unmask/tokenizer_train.h): the learned merges equal a plain recount-
// everything reference, the written files load back with the regular Tokenizer and
// round-trip text, special tokens are single ids, bad options fail clearly, and the
// `train-tokenizer` CLI works end to end.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "test_util.h"
#include "tokenizer/unicode.h"
#include "unmask/tokenizer.h"
#include "unmask/tokenizer_train.h"

namespace unmask {
namespace {

using test::TempDir;

struct ReferenceBpe {
  std::vector<std::string> tokens;  // by id, raw bytes
  std::vector<std::pair<std::string, std::string>> merges;
};

// The definition in tokenizer_train.h, computed the slow way: every round recounts all
// pairs from scratch and scans them in (left, right) order for the first maximum.
ReferenceBpe reference_bpe(const std::map<std::string, int64_t>& pieces, int target, int64_t min_frequency) {
  ReferenceBpe r;
  std::map<std::string, int> ids;
  for (int b = 0; b < 256; ++b) {
    r.tokens.push_back(std::string(1, char(b)));
    ids[r.tokens.back()] = b;
  }
  std::vector<std::pair<std::vector<int>, int64_t>> words;
  for (const auto& [text, count] : pieces) {
    std::vector<int> syms;
    for (unsigned char c : text) syms.push_back(c);
    words.push_back({syms, count});
  }
  while (int(r.tokens.size()) < target) {
    std::map<std::pair<int, int>, int64_t> counts;
    for (const auto& [syms, count] : words)
      for (size_t i = 0; i + 1 < syms.size(); ++i) counts[{syms[i], syms[i + 1]}] += count;
    std::pair<int, int> best{-1, -1};
    int64_t best_count = 0;
    for (const auto& [pair, count] : counts)
      if (count > best_count) {
        best = pair;
        best_count = count;
      }
    if (best_count < min_frequency || best_count == 0) break;
    const std::string bytes = r.tokens[size_t(best.first)] + r.tokens[size_t(best.second)];
    if (!ids.count(bytes)) {
      ids[bytes] = int(r.tokens.size());
      r.tokens.push_back(bytes);
    }
    const int merged = ids[bytes];
    r.merges.push_back({r.tokens[size_t(best.first)], r.tokens[size_t(best.second)]});
    for (auto& [syms, count] : words) {
      std::vector<int> next;
      for (size_t i = 0; i < syms.size();) {
        if (i + 1 < syms.size() && syms[i] == best.first && syms[i + 1] == best.second) {
          next.push_back(merged);
          i += 2;
        } else {
          next.push_back(syms[i++]);
        }
      }
      syms = next;
    }
  }
  return r;
}

// Space-separated lowercase words: the code pattern splits them into the first word and
// " word" pieces, so the reference can count pieces without any regex.
std::map<std::string, int64_t> space_pieces(const std::string& text) {
  std::map<std::string, int64_t> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start + 1);
    if (end == std::string::npos) end = text.size();
    ++out[text.substr(start, end - start)];
    start = end;
  }
  return out;
}

void expect_same_as_reference(const std::string& corpus, const BpeTrainOptions& o) {
  const BpeVocabulary v = train_bpe({corpus}, o);
  const ReferenceBpe r =
      reference_bpe(space_pieces(corpus), o.vocab_size - int(o.special_tokens.size()), o.min_frequency);
  ASSERT_GT(r.merges.size(), 10u) << "the corpus should allow a real number of merges";
  ASSERT_EQ(v.merges.size(), r.merges.size());
  for (size_t i = 0; i < r.merges.size(); ++i) {
    EXPECT_EQ(v.tokens[size_t(v.merges[i].first)], r.merges[i].first) << "merge " << i;
    EXPECT_EQ(v.tokens[size_t(v.merges[i].second)], r.merges[i].second) << "merge " << i;
  }
  EXPECT_EQ(v.tokens, r.tokens);
}

TEST(BpeTrainer, MergesEqualPlainReferenceOnTinyCorpus) {
  const std::string corpus =
      "low lower lowest low newer newest wider wide low lower new newer lowest widest low new";
  BpeTrainOptions o;
  o.vocab_size = 256 + 3 + 40;
  o.min_frequency = 1;
  expect_same_as_reference(corpus, o);
  // By hand: ('l','o') and ('o','w') occur 8 times (every low* word), more than any other
  // pair (' ','l' and 'w','e': 7); the tie goes to the smaller pair ('l' < 'o'), then
  // ("lo",'w') has the 8 occurrences.
  const BpeVocabulary v = train_bpe({corpus}, o);
  EXPECT_EQ(v.tokens[size_t(v.merges[0].first)] + v.tokens[size_t(v.merges[0].second)], "lo");
  EXPECT_EQ(v.tokens[size_t(v.merges[1].first)] + v.tokens[size_t(v.merges[1].second)], "low");
}

TEST(BpeTrainer, MergesEqualPlainReferenceOnRandomWordsWithTiesAndRepeatedSpellings) {
  // A three-letter alphabet makes many count ties and pairs that spell the same bytes
  // ("a"+"ab" and "aa"+"b"), the paths where incremental counting can go wrong.
  std::mt19937 rng(7);
  std::string corpus;
  for (int w = 0; w < 3000; ++w) {
    if (w) corpus += ' ';
    const int len = 1 + int(rng() % 9);
    for (int i = 0; i < len; ++i) corpus += char('a' + rng() % 3);
  }
  BpeTrainOptions o;
  o.vocab_size = 256 + 3 + 400;
  o.min_frequency = 2;
  expect_same_as_reference(corpus, o);
}

TEST(BpeTrainer, StopsAtMinFrequency) {
  BpeTrainOptions o;
  o.vocab_size = 1000;
  o.min_frequency = 3;
  const BpeVocabulary v = train_bpe({"ab ab cd cd"}, o);
  // (a,b) occurs twice, (' ',c) once...: nothing reaches 3.
  EXPECT_TRUE(v.merges.empty());
  o.min_frequency = 2;
  EXPECT_FALSE(train_bpe({"ab ab cd cd"}, o).merges.empty());
}

// Pseudo-code with identifiers, numbers, operators, indentation and non-ASCII text.
std::string synthetic_code(uint32_t seed, int lines) {
  std::mt19937 rng(seed);
  const std::vector<std::string> words = {"def", "return", "self", "value", "items", "for", "in", "if",
                                          "None", "print", "_cache", "größe", "数据", "x1"};
  const std::vector<std::string> ops = {" = ", "(", ")", ", ", ".", ":", " + ", " == ", "[", "]", "'", "\"", " # "};
  std::string s;
  for (int l = 0; l < lines; ++l) {
    s += std::string(size_t(4 * (rng() % 4)), ' ');
    const int n = 2 + int(rng() % 6);
    for (int i = 0; i < n; ++i) {
      s += words[rng() % words.size()];
      if (rng() % 4 == 0) s += std::to_string(rng() % 5000);
      s += ops[rng() % ops.size()];
    }
    s += rng() % 5 == 0 ? "\n\n" : "\n";
  }
  return s;
}

// Random strings over a pool of ASCII, multi-byte characters, white space and special
// token look-alikes, plus raw bytes that are not valid UTF-8.
std::string random_text(std::mt19937& rng) {
  const std::vector<std::string> pool = {"a", "Z", "_", "7", " ", "  ", "\n", "\t", "\r\n", "(", "):", "é", "数",
                                         "🙂", "<|mask|>", "<|endoftext|>", "def", "'s", "\xff", "\xc3", "\x80"};
  std::string s;
  const int n = int(rng() % 40);
  for (int i = 0; i < n; ++i) s += pool[rng() % pool.size()];
  return s;
}

TEST(BpeTrainer, WrittenTokenizerLoadsAndRoundTripsRandomText) {
  TempDir dir;
  BpeTrainOptions o;
  o.vocab_size = 600;
  const BpeVocabulary v = train_bpe({synthetic_code(1, 400), synthetic_code(2, 200)}, o);
  ASSERT_EQ(int(v.tokens.size()) + 3, o.vocab_size) << "the corpus should fill the vocabulary";
  write_bpe_tokenizer(v, dir.path());
  const Tokenizer tok = Tokenizer::from_dir(dir.path());
  EXPECT_EQ(tok.vocab_size(), o.vocab_size);
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    ASSERT_EQ(tok.id_to_token(int32_t(id)), tok::bytes_to_byte_level(v.tokens[id])) << "id " << id;
    ASSERT_EQ(tok.token_to_id(tok.id_to_token(int32_t(id))), int32_t(id));
  }
  std::mt19937 rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    const std::string text = random_text(rng);
    const std::vector<int32_t> ids = tok.encode(text, EncodeOptions{.parse_special = false, .add_special_tokens = true});
    ASSERT_EQ(tok.decode(ids), tok::sanitize_utf8(text)) << "text " << ::testing::PrintToString(text);
    // Encoding is canonical: what decodes to a text encodes back to the same ids.
    ASSERT_EQ(tok.encode(tok.decode(ids), EncodeOptions{.parse_special = false, .add_special_tokens = true}), ids);
  }
  // Learned merges are used: a frequent training word is one token.
  EXPECT_EQ(tok.encode(" return", EncodeOptions{}).size(), 1u);
  EXPECT_EQ(tok.encode("\n        ", EncodeOptions{}).size(), 1u) << "newline + indentation is one piece";
}

TEST(BpeTrainer, SpecialTokensAreSingleIdsWithRoles) {
  TempDir dir;
  BpeTrainOptions o;
  o.vocab_size = 400;
  const BpeVocabulary v = train_bpe({synthetic_code(5, 300)}, o);
  write_bpe_tokenizer(v, dir.path());
  const Tokenizer tok = Tokenizer::from_dir(dir.path());
  const int32_t n = int32_t(v.tokens.size());
  ASSERT_EQ(tok.special_id(TokenRole::kEos), n);
  ASSERT_EQ(tok.special_id(TokenRole::kBos), n + 1);
  ASSERT_EQ(tok.special_id(TokenRole::kMask), n + 2);
  EXPECT_EQ(tok.special_id(TokenRole::kPad), n) << "pad is the end token";
  const EncodeOptions special{.parse_special = true, .add_special_tokens = false};
  EXPECT_EQ(tok.encode("<|mask|>", special), std::vector<int32_t>{n + 2});
  EXPECT_EQ(tok.encode("x<|endoftext|><|startoftext|>", special).back(), n + 1);
  for (int32_t id : {n, n + 1, n + 2}) EXPECT_TRUE(tok.is_special(id));
  // User text cannot forge a special token.
  for (int32_t id : tok.encode("<|mask|>", EncodeOptions{})) EXPECT_LT(id, n);
  EXPECT_EQ(tok.decode(std::vector<int32_t>{n + 2}, DecodeOptions{.skip_special = true}), "");
}

TEST(BpeTrainer, BadOptionsNameTheProblem) {
  BpeTrainOptions o;
  o.vocab_size = 200;
  EXPECT_TRUE(test::throws_error([&] { train_bpe({"abc"}, o); }, {"vocab size 200", "256 byte tokens"}));
  o = BpeTrainOptions{};
  o.min_frequency = 0;
  EXPECT_TRUE(test::throws_error([&] { train_bpe({"abc"}, o); }, {"min frequency"}));
  o = BpeTrainOptions{};
  o.special_tokens = {"<|a|>", "<|a|>"};
  EXPECT_TRUE(test::throws_error([&] { train_bpe({"abc"}, o); }, {"'<|a|>'", "twice"}));
  o = BpeTrainOptions{};
  o.mask_token = "<|nope|>";
  EXPECT_TRUE(test::throws_error([&] { train_bpe({"abc"}, o); }, {"'<|nope|>'", "not one of the special tokens"}));
}

TEST(BpeTrainer, CliTrainsWritesAndReports) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  TempDir dir;
  test::write_file(dir.file("a.txt"), synthetic_code(9, 300));
  const auto r = test::run_command(
      {test::cli_path(), "train-tokenizer", "--data", dir.file("a.txt"), "--vocab-size", "500", "--out", dir.file("tok")},
      dir);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.err;
  EXPECT_NE(r.out.find("round trip exact"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("merges ["), std::string::npos) << "progress is shown: " << r.err;
  EXPECT_EQ(Tokenizer::from_dir(dir.file("tok")).vocab_size(), 500);
  const auto bad = test::run_command(
      {test::cli_path(), "train-tokenizer", "--data", dir.file("missing.txt"), "--out", dir.file("tok2")}, dir);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("missing.txt: cannot open"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace unmask
