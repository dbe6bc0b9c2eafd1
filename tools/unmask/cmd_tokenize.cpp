// `unmask tokenize` and `unmask detokenize`: text <-> ids with a model folder's own
// tokenizer (and chat template with --chat); `tokenize --bench FILE...` measures
// tokenizer load time and single-thread encode / decode throughput.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <ctime>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "models/gguf_model.h"
#include "unmask/chat_template.h"
#include "unmask/error.h"
#include "unmask/gguf.h"
#include "unmask/tokenizer.h"

namespace unmask::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct TokenizeArgs {
  std::string model;
  std::vector<std::string> text;
  std::string file;
  bool json = false;
  bool no_parse_special = false;
  bool no_add_special = false;
  bool chat = false;
  std::string system;
  std::vector<std::string> bench_files;
  int bench_repeats = 3;
};

struct DetokenizeArgs {
  std::string model;
  std::vector<std::string> ids;
  bool skip_special = false;
  bool json = false;
};

// A model folder, a tokenizer fixture folder, or a tokenizer.json file.
Tokenizer load_tokenizer(const std::string& path) {
  if (is_gguf_file(path)) return load_gguf_tokenizer(path);  // a .gguf model's embedded tokenizer
  if (fs::is_regular_file(path)) {
    const fs::path cfg = fs::path(path).parent_path() / "tokenizer_config.json";
    return Tokenizer::from_files(path, fs::exists(cfg) ? cfg.string() : std::string());
  }
  return Tokenizer::from_dir(path);
}

std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open");
  return read_all(f);
}

std::string input_text(const TokenizeArgs& a) {
  if (!a.file.empty()) {
    if (a.file == "-") return read_all(std::cin);
    return read_file(a.file);
  }
  std::string text;
  for (size_t i = 0; i < a.text.size(); ++i) text += (i ? " " : "") + a.text[i];
  return text;
}

// A JSON string literal: shows spaces, newlines and control bytes unambiguously.
std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void print_tokens(const Tokenizer& tok, const std::vector<int32_t>& ids, bool json, const std::string* prompt,
                  bool templated) {
  if (json) {
    nlohmann::json out;
    if (prompt) {
      out["prompt"] = *prompt;
      out["templated"] = templated;
    }
    out["ids"] = ids;
    std::vector<std::string> tokens;
    for (int32_t id : ids) tokens.push_back(tok.id_to_token(id));
    out["tokens"] = tokens;
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  if (prompt) std::printf("prompt  %s\n", quoted(*prompt).c_str());
  std::printf("%zu tokens\n", ids.size());
  for (int32_t id : ids) {
    std::printf("%8d  %-24s %s%s\n", id, quoted(tok.id_to_token(id)).c_str(), quoted(tok.token_bytes(id)).c_str(),
                tok.is_special(id) ? "  (special)" : "");
  }
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// CPU time of this thread: unlike wall time, not inflated when other work shares the cores.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Splits text into ~4 KiB chunks at line ends (documents / prompts of realistic size).
std::vector<std::string_view> chunks_of(const std::string& text, size_t target) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = std::min(text.size(), start + target);
    const size_t nl = text.find('\n', end);
    end = nl == std::string::npos ? text.size() : nl + 1;
    out.push_back(std::string_view(text).substr(start, end - start));
    start = end;
  }
  return out;
}

void run_bench(const TokenizeArgs& a) {
  std::string corpus;
  for (const std::string& f : a.bench_files) corpus += read_file(f);
  if (corpus.empty()) throw Error("tokenize --bench: the files given are empty");
  const double mb = static_cast<double>(corpus.size()) / 1e6;
  std::vector<double> loads, load_cpu;
  std::unique_ptr<Tokenizer> tok;
  for (int r = 0; r < std::max(1, a.bench_repeats); ++r) {
    tok.reset();
    const auto t0 = Clock::now();
    const double c0 = thread_cpu_seconds();
    tok = std::make_unique<Tokenizer>(load_tokenizer(a.model));
    load_cpu.push_back(thread_cpu_seconds() - c0);
    loads.push_back(seconds_since(t0));
  }
  std::sort(loads.begin(), loads.end());
  std::sort(load_cpu.begin(), load_cpu.end());
  std::printf("tokenizer   %s (vocab %d)\n", a.model.c_str(), tok->vocab_size());
  std::printf("load        %.3f s wall, %.3f s CPU (best of %zu; median wall %.3f s)\n", loads.front(), load_cpu.front(),
              loads.size(), loads[loads.size() / 2]);
  std::printf("corpus      %.2f MB from %zu file(s)\n", mb, a.bench_files.size());

  // Best CPU time of the repeats (the thread's own time: robust to busy machines).
  auto best_of = [&](auto&& fn) {
    double best = 1e30;
    for (int r = 0; r < std::max(1, a.bench_repeats); ++r) {
      const double c0 = thread_cpu_seconds();
      fn();
      best = std::min(best, thread_cpu_seconds() - c0);
    }
    return best;
  };
  std::vector<int32_t> ids;
  const double whole = best_of([&] { ids = tok->encode(corpus, EncodeOptions{false, false}); });
  std::printf("encode      %.1f MB/s, %.2f M tokens/s  (one call over the corpus; %zu tokens, %.2f bytes/token)\n",
              mb / whole, static_cast<double>(ids.size()) / whole / 1e6, ids.size(),
              static_cast<double>(corpus.size()) / static_cast<double>(ids.size()));
  const auto chunks = chunks_of(corpus, 4096);
  size_t n_chunk_tokens = 0;
  const double chunked = best_of([&] {
    n_chunk_tokens = 0;
    for (std::string_view c : chunks) n_chunk_tokens += tok->encode(c, EncodeOptions{false, false}).size();
  });
  std::printf("encode      %.1f MB/s  (%zu calls of ~4 KiB)\n", mb / chunked, chunks.size());
  std::string text;
  const double dec = best_of([&] { text = tok->decode(ids); });
  std::printf("decode      %.1f MB/s  (round trip %s)\n", mb / dec, text == corpus ? "exact" : "differs: normalizer or clean-up");
}

void run_tokenize(const TokenizeArgs& a) {
  if (!a.bench_files.empty()) return run_bench(a);
  const Tokenizer tok = load_tokenizer(a.model);
  const std::string text = input_text(a);
  if (a.chat) {
    std::vector<ChatMessage> messages;
    if (!a.system.empty()) messages.push_back({"system", a.system});
    messages.push_back({"user", text});
    const ChatPrompt p = apply_chat_template(tok, messages);
    if (!p.templated) std::fprintf(stderr, "note: %s has no chat template; using the raw prompt\n", a.model.c_str());
    print_tokens(tok, p.ids, a.json, &p.text, p.templated);
    return;
  }
  const auto ids = tok.encode(text, EncodeOptions{!a.no_parse_special, !a.no_add_special});
  print_tokens(tok, ids, a.json, nullptr, false);
}

std::vector<int32_t> parse_ids(const std::vector<std::string>& args) {
  std::string all;
  for (const auto& s : args) all += s + " ";
  if (args.empty()) all = read_all(std::cin);
  for (char& c : all) {
    if (c == ',' || c == '[' || c == ']') c = ' ';
  }
  std::istringstream in(all);
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < INT32_MIN || v > INT32_MAX) throw Error("detokenize: \"" + word + "\" is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

void run_detokenize(const DetokenizeArgs& a) {
  const Tokenizer tok = load_tokenizer(a.model);
  const auto ids = parse_ids(a.ids);
  const std::string text = tok.decode(ids, DecodeOptions{a.skip_special, std::nullopt});
  if (a.json) {
    std::printf("%s\n", nlohmann::json({{"text", text}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s\n", text.c_str());
  }
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* t = app.add_subcommand("tokenize", "Text to token ids with a model's own tokenizer (or --bench it)");
  t->add_option("-m,--model", a->model, "Model folder (tokenizer.json [+ tokenizer_config.json]) or a tokenizer.json")
      ->required();
  t->add_option("text", a->text, "Text to encode (joined with spaces)");
  t->add_option("-f,--file", a->file, "Read the text from a file ('-' for stdin)");
  t->add_flag("--json", a->json, "Print {\"ids\": [...], \"tokens\": [...]}");
  t->add_flag("--no-parse-special", a->no_parse_special, "Treat special-token text as plain text");
  t->add_flag("--no-add-special", a->no_add_special, "Do not apply the post-processor (BOS/EOS)");
  t->add_flag("--chat", a->chat, "Encode the text as a user message through the model's chat template");
  t->add_option("--system", a->system, "System message for --chat");
  t->add_option("--bench", a->bench_files, "Benchmark load time and encode/decode throughput on these files");
  t->add_option("--repeats", a->bench_repeats, "Repetitions per --bench measurement (best is reported)");
  t->callback([a] { run_tokenize(*a); });

  auto d = std::make_shared<DetokenizeArgs>();
  auto* dt = app.add_subcommand("detokenize", "Token ids to text with a model's own tokenizer");
  dt->add_option("-m,--model", d->model, "Model folder or tokenizer.json")->required();
  dt->add_option("ids", d->ids, "Token ids (space or comma separated; stdin when none)");
  dt->add_flag("--skip-special", d->skip_special, "Drop special tokens");
  dt->add_flag("--json", d->json, "Print {\"text\": ...}");
  dt->callback([d] { run_detokenize(*d); });
}

}  // namespace unmask::cli
