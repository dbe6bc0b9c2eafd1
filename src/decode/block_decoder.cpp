// unmask's own block decoder: block_decode (prompt + dynamic or fixed length) and
// block_infill (holes anywhere), composed from block_scoring (fused scores),
// block_commit (commit rules), block_cache (which rows a step recomputes), the LLaDA
// schedule and the shared sampling helpers. See docs/decoders.md, "Block decoder".
//
// Blocks are found, not precomputed: the active block is the leftmost maximal run of
// masks cut to block_length. With dynamic length the canvas holds no mask once a block
// is finished, so the next block is appended then (min(block_length, what is left of
// max_tokens) masks). Each step:
//   1. one model call (score for kNone, else score_cached with the policy's window)
//      asking only for the active block's masked slots;
//   2. per slot: fused row stats; x0 = best non-mask token (T = 0) or a seeded draw;
//      score = confidence / margin / negative entropy;
//   3. the commit rule picks >= 1 slots, x0 is written, a StepEvent is emitted;
//   4. block_decode only: if the answer region holds an end token with no mask
//      before it, decoding stops and the canvas is cut after that token.
#include <algorithm>
#include <cmath>

#include "decode/block_cache.h"
#include "decode/block_commit.h"
#include "decode/block_scoring.h"
#include "decode/canvas.h"
#include "decode/sampling.h"
#include "decode/schedule.h"
#include "decode/scoring.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {

namespace {

using decode::Rng;

void check_block_options(const BlockDecoderOptions& o, const LogitSource& src, const std::string& name) {
  check(o.block_length > 0, name + ": block_length " + std::to_string(o.block_length) + " must be positive");
  check(o.steps >= 0, name + ": steps " + std::to_string(o.steps) + " must be >= 0 (0 = one slot per step)");
  check(std::isfinite(o.threshold), name + ": threshold must be finite");
  check(std::isfinite(o.factor) && o.factor > 0, name + ": factor " + std::to_string(o.factor) + " must be > 0");
  check(std::isfinite(o.temperature) && o.temperature >= 0,
        name + ": temperature " + std::to_string(o.temperature) + " must be >= 0");
  check(o.top_p > 0 && o.top_p <= 1, name + ": top_p " + std::to_string(o.top_p) + " must be in (0, 1]");
  check(o.top_k >= 0, name + ": top_k " + std::to_string(o.top_k) + " must be >= 0 (0 = none)");
  check(o.refresh_window >= 0, name + ": refresh_window " + std::to_string(o.refresh_window) + " must be >= 0");
  check(src.vocab >= 2, name + ": the vocabulary needs a token besides the mask id");
  for (int32_t id : o.end_ids)
    check(id >= 0 && id < src.vocab, name + ": end token " + std::to_string(id) + " is not in [0, " +
                                         std::to_string(src.vocab) + ")");
  check(o.cache == BlockCache::kNone || bool(src.score_cached),
        name + ": cache policies other than none need a logit source with a KV cache (score_cached)");
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

class BlockRunner {
 public:
  // steps_per_block: the top-n / dynamic schedule's steps per block (0 = one per step).
  BlockRunner(const LogitSource& src, const BlockDecoderOptions& opt, const StepCallback& on_step, std::string name,
              int steps_per_block)
      : src_(src), opt_(opt), on_step_(on_step), name_(std::move(name)), steps_per_block_(steps_per_block), rng_(opt.seed),
        scratch_(size_t(src.vocab)), probs_(size_t(src.vocab)) {}

  // Decodes the block [start, end) of `x` until it holds no mask. With answer_begin >= 0
  // and end ids set, returns the end token's position as soon as the answer region
  // [answer_begin, ...) is ended (see answer_end); else -1.
  int run_block(std::vector<int32_t>& x, int start, int end, int answer_begin, int view_begin) {
    const int32_t mask = opt_.mask_id;
    const int masks = decode::count_masks(x, mask, start, end);
    const int steps = std::min(steps_per_block_ > 0 ? steps_per_block_ : masks, masks);
    const std::vector<int> schedule = decode::llada_num_transfer_tokens(masks, steps);
    for (int i = 0;; ++i) {
      const std::vector<int32_t> slots = decode::masked_slots_between(x, mask, start, end);
      if (slots.empty()) return -1;
      query(x, slots, start, end, i == 0);
      std::vector<int32_t> x0(slots.size());
      std::vector<double> conf(slots.size());
      for (size_t j = 0; j < slots.size(); ++j) {
        const float* row = logits_.data() + j * size_t(src_.vocab);
        const decode::RowStats st = decode::fused_row_stats(row, src_.vocab, mask);
        x0[j] = opt_.temperature == 0 ? st.top1 : sample(row);
        conf[j] = opt_.score == BlockScore::kConfidence ? st.prob(x0[j]) : st.score(opt_.score);
      }
      // Past the schedule (only when it has fewer steps than masks left: never at T = 0
      // with top-n, which commits exactly n_k) everything left is the floor.
      const int scheduled = i < int(schedule.size()) ? schedule[size_t(i)] : int(slots.size());
      std::vector<int32_t> committed;
      for (int j : decode::select_commits(opt_, conf, scheduled)) {
        x[size_t(slots[size_t(j)])] = x0[size_t(j)];
        committed.push_back(slots[size_t(j)]);
      }
      decode::emit_step(on_step_, step_++, 0, x, std::move(committed), view_begin, mask);
      if (answer_begin >= 0 && !opt_.end_ids.empty()) {
        const int e = answer_end(x, mask, answer_begin, opt_.end_ids);
        if (e >= 0) return e;
      }
    }
  }

  int forwards() const { return forwards_; }

 private:
  // One model call for the step; fills logits_ [slots][vocab].
  void query(const std::vector<int32_t>& x, const std::vector<int32_t>& slots, int start, int end, bool block_start) {
    ++forwards_;
    if (opt_.cache == BlockCache::kNone) {
      decode::query_logits(src_, {x}, slots, logits_);
      return;
    }
    CachedQuery q = decode::block_step_query(opt_.cache, block_start, start, end, int(x.size()), opt_.refresh_window);
    q.slots = slots;
    decode::query_logits_cached(src_, x, q, logits_, name_);
  }

  // Seeded draw from softmax(row / T) after the top-k and top-p filters, never the mask id.
  int32_t sample(const float* row) {
    const int V = src_.vocab;
    const float t = float(opt_.temperature);
    for (int v = 0; v < V; ++v) scratch_[size_t(v)] = row[v] / t;
    scratch_[size_t(opt_.mask_id)] = -INFINITY;
    if (opt_.top_k > 0) decode::top_k_filter(scratch_.data(), V, opt_.top_k);
    if (opt_.top_p < 1) decode::top_p_filter(scratch_.data(), V, opt_.top_p);
    decode::softmax_f32(scratch_.data(), V, probs_.data());
    return decode::sample_categorical(probs_.data(), V, rng_);
  }

  const LogitSource& src_;
  const BlockDecoderOptions& opt_;
  const StepCallback& on_step_;
  std::string name_;
  int steps_per_block_;
  Rng rng_;
  std::vector<float> logits_, scratch_, probs_;
  int forwards_ = 0, step_ = 0;
};

}  // namespace

BlockDecodeResult block_decode(const LogitSource& src, const std::vector<int32_t>& prompt,
                               const BlockDecoderOptions& opt, const StepCallback& on_step) {
  const std::string name = "block_decode";
  check_block_options(opt, src, name);
  const bool dynamic = opt.max_tokens > 0;
  const int total = dynamic ? opt.max_tokens : opt.gen_length;
  check(total > 0, name + ": give max_tokens > 0 (dynamic length) or gen_length > 0 (fixed canvas)");
  const int P = int(prompt.size());
  std::vector<int32_t> x = decode::init_canvas(src, prompt, dynamic ? std::min(opt.block_length, total) : total,
                                               opt.mask_id, name);
  const int steps_per_block =
      dynamic ? scaled_steps(opt, total)
              : decode::llada_block_layout(total, opt.block_length, opt.steps > 0 ? opt.steps : total, name).steps_per_block;
  BlockRunner runner(src, opt, on_step, name, opt.steps > 0 ? steps_per_block : 0);
  BlockDecodeResult r;
  r.prompt_length = P;
  int ended_at = -1;
  for (int from = P;;) {
    auto [start, end] = next_block(x, opt.mask_id, from, opt.block_length);
    if (start < 0) {
      const int have = int(x.size()) - P;
      if (!dynamic || have >= total) break;
      x.resize(x.size() + size_t(std::min(opt.block_length, total - have)), opt.mask_id);
      continue;
    }
    ended_at = runner.run_block(x, start, end, P, P);
    if (ended_at >= 0) break;
    from = end;
  }
  r.forwards = runner.forwards();
  r.ended = ended_at >= 0;
  if (r.ended) x.resize(size_t(ended_at) + 1);
  r.generated = (r.ended ? ended_at : int(x.size())) - P;
  r.canvas = std::move(x);
  return r;
}

BlockDecodeResult block_infill(const LogitSource& src, const std::vector<int32_t>& canvas,
                               const BlockDecoderOptions& opt, const StepCallback& on_step) {
  const std::string name = "block_infill";
  check_block_options(opt, src, name);
  check(opt.mask_id >= 0 && opt.mask_id < src.vocab,
        name + ": mask_id " + std::to_string(opt.mask_id) + " is not in [0, " + std::to_string(src.vocab) + ")");
  for (size_t i = 0; i < canvas.size(); ++i)
    check(canvas[i] >= 0 && canvas[i] < src.vocab, name + ": token " + std::to_string(canvas[i]) + " at position " +
                                                       std::to_string(i) + " is not in [0, " +
                                                       std::to_string(src.vocab) + ")");
  const auto first = std::find(canvas.begin(), canvas.end(), opt.mask_id);
  check(first != canvas.end(), name + ": the canvas holds no mask to fill");
  const int view_begin = int(first - canvas.begin());
  std::vector<int32_t> x(canvas);
  BlockDecodeResult r;
  r.generated = decode::count_masks(x, opt.mask_id, 0, int(x.size()));
  BlockRunner runner(src, opt, on_step, name, scaled_steps(opt, r.generated));
  for (int from = 0;;) {
    auto [start, end] = next_block(x, opt.mask_id, from, opt.block_length);
    if (start < 0) break;
    runner.run_block(x, start, end, -1, view_begin);
    from = end;
  }
  r.forwards = runner.forwards();
  r.canvas = std::move(x);
  return r;
}

bool parse_block_score(const std::string& s, BlockScore* out) {
  if (s == "confidence") *out = BlockScore::kConfidence;
  else if (s == "margin") *out = BlockScore::kMargin;
  else if (s == "entropy") *out = BlockScore::kNegEntropy;
  else return false;
  return true;
}

bool parse_block_commit(const std::string& s, BlockCommit* out) {
  if (s == "topn") *out = BlockCommit::kTopN;
  else if (s == "threshold") *out = BlockCommit::kThreshold;
  else if (s == "factor") *out = BlockCommit::kFactor;
  else if (s == "dynamic") *out = BlockCommit::kDynamic;
  else return false;
  return true;
}

bool parse_block_cache(const std::string& s, BlockCache* out) {
  if (s == "none") *out = BlockCache::kNone;
  else if (s == "prefix") *out = BlockCache::kPrefix;
  else if (s == "dual") *out = BlockCache::kDual;
  else if (s == "window") *out = BlockCache::kWindow;
  else return false;
  return true;
}

}  // namespace unmask
