// unmask's own block decoder over a LogitSource: block_decode (prompt + dynamic or
// fixed length) and block_infill (holes anywhere). The decoding is decode::BlockJob's
// (block_job.h); this file feeds it one model call per step from the source (score for
// cache kNone, else score_cached with the job's window), as batch_decode_step feeds many
// jobs from one batched forward. See docs/decoders.md, "Block decoder".
#include "decode/block_job.h"
#include "decode/canvas.h"
#include "unmask/decode.h"
#include "unmask/error.h"

namespace unmask {

namespace {

BlockDecodeResult run_job(const LogitSource& src, const std::vector<int32_t>& tokens, const BlockDecoderOptions& opt,
                          decode::BlockJob::Mode mode, const StepCallback& on_step, const std::string& name) {
  check(bool(src.score), name + ": logit source has no score function");
  decode::BlockJob job(src.vocab, tokens, opt, mode, bool(src.score_cached), name);
  std::vector<float> logits;
  while (job.prepare()) {
    if (job.full())
      decode::query_logits(src, {job.canvas()}, job.query().slots, logits);
    else
      decode::query_logits_cached(src, job.canvas(), job.query(), logits, name);
    job.advance(logits.data(), on_step);
  }
  return job.result();
}

}  // namespace

BlockDecodeResult block_decode(const LogitSource& src, const std::vector<int32_t>& prompt,
                               const BlockDecoderOptions& opt, const StepCallback& on_step) {
  return run_job(src, prompt, opt, decode::BlockJob::Mode::kDecode, on_step, "block_decode");
}

BlockDecodeResult block_infill(const LogitSource& src, const std::vector<int32_t>& canvas,
                               const BlockDecoderOptions& opt, const StepCallback& on_step) {
  return run_job(src, canvas, opt, decode::BlockJob::Mode::kInfill, on_step, "block_infill");
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
  else if (s == "delayed") *out = BlockCache::kDelayed;
  else return false;
  return true;
}

}  // namespace unmask
