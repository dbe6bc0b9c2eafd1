// The block decoder's state machine (decode/block_job.h): blocks, schedule, scoring,
// sampling, commits, EOS stop, dynamic length. See docs/decoders.md, "Block decoder".
//
// Blocks are found, not precomputed: the active block is the leftmost maximal run of
// masks cut to block_length. With dynamic length the canvas holds no mask once a block
// is finished, so the next block is appended then (min(block_length, what is left of
// max_tokens) masks). Each step:
//   1. one model call (full for kNone, else the policy's cached window) asking only for
//      the active block's masked slots;
//   2. per slot: fused row stats; x0 = best non-mask token (T = 0) or a seeded draw;
//      score = confidence / margin / negative entropy;
//   3. the commit rule picks >= 1 slots, x0 is written, a StepEvent is emitted;
//   4. kDecode only: if the answer region holds an end token with no mask before it,
//      decoding stops and the canvas is cut after that token.
#include "decode/block_job.h"

#include <algorithm>
#include <cmath>

#include "decode/block_cache.h"
#include "decode/block_commit.h"
#include "decode/block_scoring.h"
#include "decode/canvas.h"
#include "decode/schedule.h"
#include "decode/scoring.h"
#include "unmask/error.h"

namespace unmask::decode {

namespace {

void check_block_options(const BlockDecoderOptions& o, int vocab, bool cached, const std::string& name) {
  check(o.block_length > 0, name + ": block_length " + std::to_string(o.block_length) + " must be positive");
  check(o.steps >= 0, name + ": steps " + std::to_string(o.steps) + " must be >= 0 (0 = one slot per step)");
  check(std::isfinite(o.threshold), name + ": threshold must be finite");
  check(std::isfinite(o.factor) && o.factor > 0, name + ": factor " + std::to_string(o.factor) + " must be > 0");
  check(std::isfinite(o.temperature) && o.temperature >= 0,
        name + ": temperature " + std::to_string(o.temperature) + " must be >= 0");
  check(o.top_p > 0 && o.top_p <= 1, name + ": top_p " + std::to_string(o.top_p) + " must be in (0, 1]");
  check(o.top_k >= 0, name + ": top_k " + std::to_string(o.top_k) + " must be >= 0 (0 = none)");
  check(o.refresh_window >= 0, name + ": refresh_window " + std::to_string(o.refresh_window) + " must be >= 0");
  check(o.refresh_every >= 0, name + ": refresh_every " + std::to_string(o.refresh_every) + " must be >= 0");
  check(vocab >= 2, name + ": the vocabulary needs a token besides the mask id");
  check(o.mask_id >= 0 && o.mask_id < vocab,
        name + ": mask_id " + std::to_string(o.mask_id) + " is not in [0, " + std::to_string(vocab) + ")");
  for (int32_t id : o.end_ids)
    check(id >= 0 && id < vocab, name + ": end token " + std::to_string(id) + " is not in [0, " +
                                     std::to_string(vocab) + ")");
  check(o.cache == BlockCache::kNone || cached,
        name + ": cache policies other than none need a logit source with a KV cache (score_cached)");
}

void check_tokens(const std::vector<int32_t>& tokens, int vocab, const std::string& what, const std::string& name) {
  for (size_t i = 0; i < tokens.size(); ++i)
    check(tokens[i] >= 0 && tokens[i] < vocab, name + ": " + what + " " + std::to_string(tokens[i]) + " at position " +
                                                   std::to_string(i) + " is not in [0, " + std::to_string(vocab) + ")");
}

// Steps per block when opt.steps is spread over `length` slots (0 = one per step).
int scaled_steps(const BlockDecoderOptions& o, int length) {
  return o.steps > 0 ? std::max(1, int(int64_t(o.steps) * o.block_length / length)) : 0;
}

// Leftmost maximal run of masks at or after `from`, cut to `block_length`: [start, end),
// or {-1, -1} when no mask is left.
std::pair<int, int> next_block(const std::vector<int32_t>& x, int32_t mask, int from, int block_length) {
  const int L = int(x.size());
  int s = from;
  while (s < L && x[size_t(s)] != mask) ++s;
  if (s == L) return {-1, -1};
  int e = s;
  while (e < L && e - s < block_length && x[size_t(e)] == mask) ++e;
  return {s, e};
}

// Position of the first end token in [begin, L) with no mask before it, or -1.
int answer_end(const std::vector<int32_t>& x, int32_t mask, int begin, const std::vector<int32_t>& end_ids) {
  for (int s = begin; s < int(x.size()); ++s) {
    if (x[size_t(s)] == mask) return -1;
    if (std::find(end_ids.begin(), end_ids.end(), x[size_t(s)]) != end_ids.end()) return s;
  }
  return -1;
}

}  // namespace

BlockJob::BlockJob(int vocab, const std::vector<int32_t>& tokens, const BlockDecoderOptions& opt, Mode mode,
                   bool cached, std::string name)
    : opt_(opt), mode_(mode), name_(std::move(name)), vocab_(vocab), rng_(opt.seed) {
  check_block_options(opt_, vocab, cached, name_);
  if (mode_ == Mode::kDecode) {
    dynamic_ = opt_.max_tokens > 0;
    total_ = dynamic_ ? opt_.max_tokens : opt_.gen_length;
    check(total_ > 0, name_ + ": give max_tokens > 0 (dynamic length) or gen_length > 0 (fixed canvas)");
    check_tokens(tokens, vocab, "prompt token", name_);
    prompt_length_ = view_begin_ = from_ = int(tokens.size());
    x_ = tokens;
    x_.resize(tokens.size() + size_t(dynamic_ ? std::min(opt_.block_length, total_) : total_), opt_.mask_id);
    max_length_ = prompt_length_ + total_;
    const int spb = dynamic_ ? scaled_steps(opt_, total_)
                             : llada_block_layout(total_, opt_.block_length, opt_.steps > 0 ? opt_.steps : total_, name_)
                                   .steps_per_block;
    steps_per_block_ = opt_.steps > 0 ? spb : 0;
  } else {
    check_tokens(tokens, vocab, "token", name_);
    const auto first = std::find(tokens.begin(), tokens.end(), opt_.mask_id);
    check(first != tokens.end(), name_ + ": the canvas holds no mask to fill");
    view_begin_ = int(first - tokens.begin());
    x_ = tokens;
    max_length_ = int(x_.size());
    total_ = count_masks(x_, opt_.mask_id, 0, int(x_.size()));
    steps_per_block_ = scaled_steps(opt_, total_);
  }
  scratch_.resize(size_t(vocab));
  probs_.resize(size_t(vocab));
}

void BlockJob::start_block(int start, int end) {
  if (start_ >= 0) prev_start_ = start_;
  start_ = start;
  end_ = end;
  block_step_ = 0;
  const int masks = count_masks(x_, opt_.mask_id, start, end);
  const int steps = std::min(steps_per_block_ > 0 ? steps_per_block_ : masks, masks);
  schedule_ = llada_num_transfer_tokens(masks, steps);
}

bool BlockJob::prepare() {
  if (finished_) return false;
  std::vector<int32_t> slots =
      start_ >= 0 ? masked_slots_between(x_, opt_.mask_id, start_, end_) : std::vector<int32_t>{};
  while (slots.empty()) {
    if (start_ >= 0) from_ = end_;
    const auto [start, end] = next_block(x_, opt_.mask_id, from_, opt_.block_length);
    if (start >= 0) {
      start_block(start, end);
      slots = masked_slots_between(x_, opt_.mask_id, start_, end_);
      continue;
    }
    const int have = int(x_.size()) - prompt_length_;
    if (mode_ == Mode::kInfill || !dynamic_ || have >= total_) {
      finished_ = true;
      return false;
    }
    x_.resize(x_.size() + size_t(std::min(opt_.block_length, total_ - have)), opt_.mask_id);
  }
  const int L = int(x_.size());
  if (full()) {
    query_ = CachedQuery{};
    query_.query_begin = 0;
    query_.query_end = L;
  } else if (block_step_ == 0 && dynamic_ && prev_start_ >= 0 && opt_.refresh_every == 0) {
    // The canvas grew: keep the cache, refresh the finished block (its last commits
    // were stored while still masks) and compute the new one. With periodic refreshes
    // the block's first step is a full one instead.
    query_ = grown_canvas_query(opt_.cache, prev_start_, L, opt_.refresh_window);
  } else if (const bool refresh = block_step_ == 0 || (opt_.refresh_every > 0 && block_step_ % opt_.refresh_every == 0);
             opt_.cache == BlockCache::kDelayed && !refresh) {
    const int lo = std::min(slots.front(), last_commit_.first);
    const int hi = std::max(slots.back() + 1, last_commit_.second);
    query_ = delayed_step_query(lo, hi, L, opt_.refresh_window);
  } else {
    query_ = block_step_query(opt_.cache, refresh, start_, end_, L, opt_.refresh_window);
  }
  query_.slots = std::move(slots);
  return true;
}

std::vector<RowStats> BlockJob::score(const float* logits, bool parallel) const {
  // A pure function of each row (~60 us per row at vocab 4096), so the rows may run in
  // parallel; sampling and commits stay in slot order on one thread (advance_scored), so
  // the RNG sequence and the result do not depend on the thread count.
  const int64_t n_slots = int64_t(query_.slots.size());
  std::vector<RowStats> stats(static_cast<size_t>(n_slots));
#pragma omp parallel for schedule(static) if (parallel && n_slots > 1 && n_slots * vocab_ >= 16384)
  for (int64_t j = 0; j < n_slots; ++j) stats[size_t(j)] = fused_row_stats(logits + j * vocab_, vocab_, opt_.mask_id);
  return stats;
}

void BlockJob::advance(const float* logits, const StepCallback& on_step) {
  advance_scored(logits, score(logits, true), on_step);
}

void BlockJob::advance_scored(const float* logits, const std::vector<RowStats>& stats, const StepCallback& on_step) {
  check(!finished_ && start_ >= 0, name_ + ": advance() without a prepared step");
  const std::vector<int32_t>& slots = query_.slots;
  check(stats.size() == slots.size(), name_ + ": " + std::to_string(stats.size()) + " row scores for " +
                                          std::to_string(slots.size()) + " query slots");
  ++forwards_;
  std::vector<int32_t> x0(slots.size());
  std::vector<double> conf(slots.size());
  for (size_t j = 0; j < slots.size(); ++j) {
    const float* row = logits + j * size_t(vocab_);
    const RowStats& st = stats[j];
    x0[j] = opt_.temperature == 0 ? st.top1 : sample(row);
    conf[j] = opt_.score == BlockScore::kConfidence ? st.prob(x0[j]) : st.score(opt_.score);
  }
  // Past the schedule (only when it has fewer steps than masks left: never at T = 0
  // with top-n, which commits exactly n_k) everything left is the floor.
  const int i = block_step_++;
  const int scheduled = i < int(schedule_.size()) ? schedule_[size_t(i)] : int(slots.size());
  std::vector<int32_t> committed;
  for (int j : select_commits(opt_, conf, scheduled)) {
    x_[size_t(slots[size_t(j)])] = x0[size_t(j)];
    committed.push_back(slots[size_t(j)]);
  }
  last_commit_ = {*std::min_element(committed.begin(), committed.end()),
                  *std::max_element(committed.begin(), committed.end()) + 1};
  emit_step(on_step, step_++, 0, x_, std::move(committed), view_begin_, opt_.mask_id);
  if (mode_ == Mode::kDecode && !opt_.end_ids.empty()) {
    ended_at_ = answer_end(x_, opt_.mask_id, prompt_length_, opt_.end_ids);
    finished_ = ended_at_ >= 0;
  }
}

BlockDecodeResult BlockJob::result() const {
  BlockDecodeResult r;
  r.prompt_length = prompt_length_;
  r.forwards = forwards_;
  r.ended = ended_at_ >= 0;
  r.canvas = x_;
  if (r.ended) r.canvas.resize(size_t(ended_at_) + 1);
  r.generated = mode_ == Mode::kInfill ? total_ : (r.ended ? ended_at_ : int(x_.size())) - prompt_length_;
  return r;
}

// Seeded draw from softmax(row / T) after the top-k and top-p filters, never the mask id.
int32_t BlockJob::sample(const float* row) {
  const int V = vocab_;
  const float t = float(opt_.temperature);
  for (int v = 0; v < V; ++v) scratch_[size_t(v)] = row[v] / t;
  scratch_[size_t(opt_.mask_id)] = -INFINITY;
  if (opt_.top_k > 0) top_k_filter(scratch_.data(), V, opt_.top_k);
  if (opt_.top_p < 1) top_p_filter(scratch_.data(), V, opt_.top_p);
  softmax_f32(scratch_.data(), V, probs_.data());
  return sample_categorical(probs_.data(), V, rng_);
}

}  // namespace unmask::decode
