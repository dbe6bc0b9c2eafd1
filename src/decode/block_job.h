// decode/block_job.h — the block decoder as a step-wise state machine.
//
// One BlockJob is one canvas being decoded by unmask's block decoder (block_decode or
// block_infill, docs/decoders.md). It never calls the model: each step it names the
// model call it needs (`query`), and `advance` takes that call's logits. block_decode /
// block_infill feed it from a LogitSource (block_decoder.cpp); batch_decode_step feeds
// many jobs from one batched forward (batch_decode.cpp). Both run exactly this code.
//
//   BlockJob job(vocab, prompt, options, BlockJob::Mode::kDecode, "block_decode");
//   while (job.prepare()) {                  // finds / appends the active block
//     logits = model call for job.query()    // [query().slots.size(), vocab]
//     job.advance(logits, on_step);           // score, commit, event, EOS check
//   }
//   BlockDecodeResult r = job.result();
//
// Owns its canvas, its RNG (seeded from options.seed) and scratch rows; borrows nothing.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "decode/block_scoring.h"
#include "decode/sampling.h"
#include "unmask/decode.h"

namespace unmask::decode {

class BlockJob {
 public:
  enum class Mode { kDecode, kInfill };
  // Validates the options, ids and lengths against `vocab` (throws Error naming
  // `name`). `cached`: whether the caller can serve cached queries (a KV cache); a cache
  // policy other than kNone needs it. kDecode: `tokens` is the prompt; kInfill: the
  // canvas with holes.
  BlockJob(int vocab, const std::vector<int32_t>& tokens, const BlockDecoderOptions& opt, Mode mode, bool cached,
           std::string name);

  // Makes the next step ready: keeps the active block while it holds a mask, else finds
  // the next one (dynamic length: appends a new block of masks). Returns false when
  // decoding is finished (every slot decoded, or an end token stopped it).
  bool prepare();
  // The model call of the prepared step. `full()`: a plain forward over the whole
  // canvas (cache kNone: LogitSource::score); else the cached window. query().slots are
  // the active block's masked slots, ascending.
  bool full() const { return opt_.cache == BlockCache::kNone; }
  const CachedQuery& query() const { return query_; }
  const std::vector<int32_t>& canvas() const { return x_; }
  // Positions the canvas can reach (the KV cache a caller must provide).
  int max_length() const { return max_length_; }
  // Takes the prepared call's logits [query().slots.size(), vocab], commits, emits the
  // StepEvent and checks for an end token. Scores the rows itself (score(logits, true)).
  void advance(const float* logits, const StepCallback& on_step);
  // The rows' scores, one per query slot: a pure function of the logits, so a caller may
  // compute them on any thread (batch_decode_step: each job on the thread that ran its
  // forward). `parallel`: split the rows over OpenMP threads.
  std::vector<RowStats> score(const float* logits, bool parallel) const;
  // advance() with the rows already scored by score(logits, ...).
  void advance_scored(const float* logits, const std::vector<RowStats>& stats, const StepCallback& on_step);

  bool ended() const { return ended_at_ >= 0; }
  int forwards() const { return forwards_; }
  // The result as block_decode / block_infill return it (the canvas cut after the end token).
  BlockDecodeResult result() const;

 private:
  void start_block(int start, int end);
  int32_t sample(const float* row);

  BlockDecoderOptions opt_;
  Mode mode_;
  std::string name_;
  int vocab_ = 0;
  int prompt_length_ = 0;  // kDecode: the prompt; kInfill: 0
  int view_begin_ = 0;     // StepEvent::prompt_length (kInfill: the first hole)
  int total_ = 0;          // kDecode: max_tokens or gen_length; kInfill: the holes' masks
  bool dynamic_ = false;
  int max_length_ = 0;
  int steps_per_block_ = 0;  // 0 = one slot per step
  std::vector<int32_t> x_;
  // Active block [start_, end_), its step index and schedule; prev_start_ = the block
  // before it (dynamic length refreshes that block's rows at the next block start).
  int from_ = 0, start_ = -1, end_ = -1, prev_start_ = -1, block_step_ = 0;
  std::vector<int> schedule_;
  // Slots the last step committed, [first, last + 1): kDelayed recomputes them once more.
  std::pair<int, int> last_commit_{0, 0};
  CachedQuery query_;
  bool finished_ = false;
  int ended_at_ = -1, forwards_ = 0, step_ = 0;
  Rng rng_;
  std::vector<float> scratch_, probs_;
};

}  // namespace unmask::decode
