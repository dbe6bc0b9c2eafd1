// `unmask train-tokenizer --data FILE... --vocab-size N --out DIR`: learns a byte-level
// BPE (unmask/tokenizer_train.h) and writes tokenizer.json + tokenizer_config.json.
// Progress on stderr; afterwards the written files are loaded back with the regular
// loader, the corpus is encoded with them and the round trip is checked.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "progress_bar.h"
#include "commands.h"
#include "unmask/error.h"
#include "unmask/tokenizer.h"
#include "unmask/tokenizer_train.h"

namespace unmask::cli {
namespace {

struct TrainTokenizerArgs {
  std::vector<std::string> data;
  std::string out;
  int vocab_size = 4096;
  int64_t min_frequency = 2;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open");
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A token's bytes for the progress line: printable ASCII as is, the rest escaped.
std::string printable(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f) out += char(c);
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

void run_train_tokenizer(const TrainTokenizerArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  std::vector<std::string> files;
  size_t total = 0;
  for (const std::string& path : a.data) {
    files.push_back(read_file(path));
    total += files.back().size();
  }
  if (total == 0) throw Error("train-tokenizer: the --data files are empty");
  std::fprintf(stderr, "train-tokenizer: %.2f MB in %zu file(s)\n", double(total) / 1e6, files.size());
  const std::vector<std::string_view> texts(files.begin(), files.end());

  BpeTrainOptions o;
  o.vocab_size = a.vocab_size;
  o.min_frequency = a.min_frequency;
  o.on_progress = [&](const BpeTrainProgress& p) {
    std::fprintf(stderr, "\r  merges [%s] %d/%d  %.1f s  last '%s' x%lld\033[K",
                 progress_bar(p.merges_done, p.merges_target).c_str(), p.merges_done, p.merges_target, elapsed(),
                 printable(p.last_token).c_str(), (long long)p.best_count);
  };
  const BpeVocabulary v = train_bpe(texts, o);
  std::fprintf(stderr, "\n");
  write_bpe_tokenizer(v, a.out);
  const double train_s = elapsed();

  const Tokenizer tok = Tokenizer::from_dir(a.out);
  size_t tokens = 0, mismatches = 0;
  for (std::string_view text : texts) {
    const std::vector<int32_t> ids = tok.encode(text, EncodeOptions{.parse_special = false, .add_special_tokens = false});
    tokens += ids.size();
    if (tok.decode(ids) != text) ++mismatches;
  }
  std::printf("pieces      %lld (%lld distinct) from %.2f MB\n", (long long)v.pieces, (long long)v.distinct_pieces,
              double(v.bytes) / 1e6);
  std::printf("vocabulary  %zu tokens + %zu special = %d ids, %zu merges (%.1f s)\n", v.tokens.size(),
              v.special_tokens.size(), tok.vocab_size(), v.merges.size(), train_s);
  for (TokenRole role : {TokenRole::kBos, TokenRole::kEos, TokenRole::kPad, TokenRole::kMask})
    if (const auto id = tok.special_id(role)) std::printf("special     %-16s id %d\n", tok.special_token(role)->c_str(), *id);
  std::printf("encoded     %zu tokens: %.3f bytes/token; round trip %s\n", tokens,
              tokens ? double(total) / double(tokens) : 0.0,
              mismatches == 0 ? "exact" : (std::to_string(mismatches) + " file(s) differ").c_str());
  std::printf("wrote       %s/tokenizer.json, %s/tokenizer_config.json\n", a.out.c_str(), a.out.c_str());
  if (mismatches != 0) exit_code() = 1;
}

}  // namespace

void register_train_tokenizer(CLI::App& app) {
  auto a = std::make_shared<TrainTokenizerArgs>();
  auto* cmd = app.add_subcommand("train-tokenizer", "Learn a byte-level BPE tokenizer (tokenizer.json) from text files");
  cmd->add_option("--data", a->data, "Training text files")->required();
  cmd->add_option("--vocab-size", a->vocab_size, "Total ids including the special tokens (default 4096)");
  cmd->add_option("--out", a->out, "Output folder")->required();
  cmd->add_option("--min-frequency", a->min_frequency, "Never merge pairs seen fewer times (default 2)");
  cmd->callback([a] { run_train_tokenizer(*a); });
}

}  // namespace unmask::cli
