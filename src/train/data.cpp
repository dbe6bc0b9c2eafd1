// train/data.cpp — corpus loading and the LLaDA masking objective.
#include "train/data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "train/rng.h"
#include "unmask/error.h"

namespace unmask::train {

namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(bool(in), path + ": cannot open training data file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool is_jsonl(const std::string& path) { return path.size() >= 6 && path.substr(path.size() - 6) == ".jsonl"; }

// Calls f(object, line_number) for every non-blank line of a JSONL file.
template <class F>
void for_each_json_line(const std::string& path, F f) {
  std::istringstream in(read_text_file(path));
  std::string line;
  for (int64_t no = 1; std::getline(in, line); ++no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(path + ":" + std::to_string(no) + ": invalid JSON: " + e.what());
    }
    check(j.is_object(), path + ":" + std::to_string(no) + ": expected a JSON object");
    f(j, no);
  }
}

std::string string_field(const nlohmann::json& j, const char* key, const std::string& path, int64_t line) {
  const auto it = j.find(key);
  check(it != j.end() && it->is_string(),
        path + ":" + std::to_string(line) + ": field '" + key + "' is missing or not a string");
  return it->get<std::string>();
}

std::vector<int32_t> encode_plain(const Tokenizer& tok, const std::string& text) {
  EncodeOptions e;
  e.parse_special = false;
  e.add_special_tokens = false;
  return tok.encode(text, e);
}

}  // namespace

Corpus load_corpus(const std::vector<std::string>& files, const Tokenizer& tokenizer, int32_t eos, bool progress) {
  Corpus c;
  auto add_document = [&](const std::string& text) {
    const std::vector<int32_t> ids = encode_plain(tokenizer, text);
    c.tokens.insert(c.tokens.end(), ids.begin(), ids.end());
    c.tokens.push_back(eos);
    c.bytes += int64_t(text.size());
    ++c.documents;
  };
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& path = files[i];
    if (is_jsonl(path))
      for_each_json_line(path, [&](const nlohmann::json& j, int64_t no) { add_document(string_field(j, "text", path, no)); });
    else
      add_document(read_text_file(path));
    if (progress)
      std::fprintf(stderr, "\rtokenizing: %zu/%zu files, %lld tokens", i + 1, files.size(),
                   static_cast<long long>(c.tokens.size()));
  }
  if (progress && !files.empty()) std::fprintf(stderr, "\n");
  return c;
}

std::vector<SftExample> load_sft(const std::vector<std::string>& files, const Tokenizer& tokenizer, int32_t eos) {
  std::vector<SftExample> out;
  for (const std::string& path : files) {
    check(is_jsonl(path), path + ": SFT data must be .jsonl with prompt/response fields");
    for_each_json_line(path, [&](const nlohmann::json& j, int64_t no) {
      SftExample e;
      e.prompt = encode_plain(tokenizer, string_field(j, "prompt", path, no));
      e.response = encode_plain(tokenizer, string_field(j, "response", path, no));
      e.response.push_back(eos);
      out.push_back(std::move(e));
    });
  }
  check(!out.empty(), "SFT data: no examples in the given files");
  return out;
}

namespace {

// Quantile of Beta(2, 2), whose CDF is F(t) = 3t^2 - 2t^3: with t = 1/2 + s the equation
// F(t) = u is the depressed cubic s^3 - (3/4)s + (u - 1/2)/2 = 0, whose root in
// [-1/2, 1/2] is s = cos(acos(1 - 2u) / 3 - 2pi/3).
double beta22_quantile(double u) {
  const double pi = 3.14159265358979323846;
  return 0.5 + std::cos(std::acos(std::clamp(1.0 - 2.0 * u, -1.0, 1.0)) / 3.0 - 2.0 * pi / 3.0);
}

}  // namespace

std::vector<double> stratified_times(const ObjectiveOptions& o, int64_t step) {
  Rng rng(o.seed, Stream::kTime, uint64_t(step));
  const double u = rng.uniform();
  std::vector<double> t(size_t(o.batch));
  for (int b = 0; b < o.batch; ++b) {
    const double s = (double(b) + 1.0 - u) / double(o.batch);
    // Quantile 0 would give t = 0 (p = eps); the stratum keeps it above 0 anyway.
    t[size_t(b)] = o.time_sampling == TimeSampling::kBell ? std::max(beta22_quantile(s), 1e-6) : s;
  }
  return t;
}

namespace {

// Masks positions [begin, end) of sequence b with probability p; returns nothing, sets
// input to the mask id and weight to `w` where masked.
void mask_span(TrainBatch& tb, int b, int begin, int end, double p, float w, const ObjectiveOptions& o,
               int64_t step) {
  Rng rng(o.seed, Stream::kMask, uint64_t(step), uint64_t(b));
  for (int i = begin; i < end; ++i) {
    const size_t r = size_t(b) * size_t(tb.seq_len) + size_t(i);
    if (rng.uniform() < p) {
      tb.input[r] = o.mask_id;
      tb.weight[r] = w;
    }
  }
}

double mask_prob(double t, double eps) { return (1.0 - eps) * t + eps; }

TrainBatch empty_batch(int batch, int seq_len) {
  TrainBatch tb;
  tb.batch = batch;
  tb.seq_len = seq_len;
  const size_t n = size_t(batch) * size_t(seq_len);
  tb.input.resize(n);
  tb.target.resize(n);
  tb.weight.assign(n, 0.0f);
  return tb;
}

}  // namespace

TrainBatch pretrain_batch(const Corpus& corpus, const ObjectiveOptions& o, int64_t step) {
  const int64_t n = int64_t(corpus.tokens.size());
  check(n >= o.seq_len, "training data: " + std::to_string(n) + " tokens is shorter than one window of seq_len " +
                            std::to_string(o.seq_len));
  Rng cut(o.seed, Stream::kCut, uint64_t(step));
  int L = o.seq_len;
  if (cut.uniform() < o.cut_prob) L = 1 + int(cut.below(uint64_t(o.seq_len)));
  TrainBatch tb = empty_batch(o.batch, L);
  const std::vector<double> t = stratified_times(o, step);
  for (int b = 0; b < o.batch; ++b) {
    Rng win(o.seed, Stream::kWindow, uint64_t(step), uint64_t(b));
    const int64_t start = int64_t(win.below(uint64_t(n - L + 1)));
    for (int i = 0; i < L; ++i) tb.target[size_t(b) * size_t(L) + size_t(i)] = corpus.tokens[size_t(start + i)];
  }
  tb.input = tb.target;
  for (int b = 0; b < o.batch; ++b) {
    const double p = mask_prob(t[size_t(b)], o.eps);
    mask_span(tb, b, 0, L, p, float(1.0 / (p * double(o.batch) * double(L))), o, step);
  }
  return tb;
}

TrainBatch sft_batch(const std::vector<SftExample>& examples, const ObjectiveOptions& o, int64_t step) {
  check(!examples.empty(), "SFT batch: no examples");
  check(o.seq_len >= 2, "SFT batch: seq_len must be at least 2");
  const int L = o.seq_len;
  TrainBatch tb = empty_batch(o.batch, L);
  const std::vector<double> t = stratified_times(o, step);
  for (int b = 0; b < o.batch; ++b) {
    Rng pick(o.seed, Stream::kWindow, uint64_t(step), uint64_t(b));
    const SftExample& e = examples[size_t(pick.below(uint64_t(examples.size())))];
    // Keep the end of a long prompt (nearest the answer), leaving room for one answer token.
    const size_t prompt_len = std::min(e.prompt.size(), size_t(L - 1));
    int32_t* row = tb.target.data() + size_t(b) * size_t(L);
    std::copy(e.prompt.end() - std::ptrdiff_t(prompt_len), e.prompt.end(), row);
    size_t i = prompt_len;
    for (size_t j = 0; j < e.response.size() && i < size_t(L); ++j) row[i++] = e.response[j];
    for (; i < size_t(L); ++i) row[i] = o.eos_id;
    std::copy(row, row + L, tb.input.data() + size_t(b) * size_t(L));
    const double p = mask_prob(t[size_t(b)], o.eps);
    const double answer_len = double(L) - double(prompt_len);
    mask_span(tb, b, int(prompt_len), L, p, float(1.0 / (p * answer_len * double(o.batch))), o, step);
  }
  return tb;
}

}  // namespace unmask::train
