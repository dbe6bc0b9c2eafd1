// train/data.h — training data: tokenized corpora and the masked batches of the
// LLaDA objective.
//
// Corpus and SftExample own their token ids. Batch makers are pure functions of
// (data, options, step): the windows, t and masks of step s come from RNG streams keyed
// by (seed, s), so a resumed run sees exactly the batches the uninterrupted one would.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/model.h"
#include "unmask/tokenizer.h"

namespace unmask::train {

// Pretraining text: every document's tokens followed by EOS, concatenated.
struct Corpus {
  std::vector<int32_t> tokens;
  int64_t bytes = 0;      // UTF-8 bytes of the documents' text
  int64_t documents = 0;
};

// Documents: a .jsonl file gives one per line (field "text"); any other file is one
// document. `progress`: a line per file on stderr. Throws Error naming file and line.
Corpus load_corpus(const std::vector<std::string>& files, const Tokenizer& tokenizer, int32_t eos, bool progress);

struct SftExample {
  std::vector<int32_t> prompt;    // never masked
  std::vector<int32_t> response;  // ends with EOS
};
// .jsonl, one {"prompt": "...", "response": "..."} object per line.
std::vector<SftExample> load_sft(const std::vector<std::string>& files, const Tokenizer& tokenizer, int32_t eos);

struct ObjectiveOptions {
  int batch = 8, seq_len = 128;
  int32_t mask_id = -1, eos_id = -1;
  double eps = 1e-3;        // p = (1 - eps) t + eps
  double cut_prob = 0.01;   // probability that a batch is cut to a random length in [1, seq_len]
  uint64_t seed = 1;
  TimeSampling time_sampling = TimeSampling::kUniform;
};

// The per-sequence times of a step: s_b = (b + 1 - u) / B with one u ~ U[0, 1) per step
// (stratified: one s in each of the B strata of (0, 1]); t_b = s_b for kUniform, and
// the Beta(2, 2) quantile of s_b for kBell (same strata, in probability).
std::vector<double> stratified_times(const ObjectiveOptions& o, int64_t step);

// B random windows of the corpus; every position masked with probability p_b; scored
// positions weigh 1 / (p_b * B * L) (L after a possible cut). Throws Error when the
// corpus is shorter than seq_len.
TrainBatch pretrain_batch(const Corpus& corpus, const ObjectiveOptions& o, int64_t step);

// B random examples laid out as prompt, response, EOS padding (truncated to seq_len,
// the prompt to at most seq_len - 1 tokens); only response and padding positions are
// masked (probability p_b), weighing 1 / (p_b * answer_length_b * B).
TrainBatch sft_batch(const std::vector<SftExample>& examples, const ObjectiveOptions& o, int64_t step);

}  // namespace unmask::train
