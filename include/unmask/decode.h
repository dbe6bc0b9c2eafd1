// unmask/decode.h — reference decoders (denoising policies) over a logit source.
//
// Decoders never see the model: they ask a LogitSource for logits at canvas
// slots (the source applies the model's logit shift). This keeps every decoder
// testable on crafted logits. Decoders own their canvas; callbacks borrow it
// for the duration of the call only.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace unmask {

struct Model;

// Scores slots of one or more equal-length canvases in one model call.
// out is resized to [canvases.size()][slots.size()][vocab] (row-major, f32).
// Decoders call `score` exactly once per model call of the reference algorithm they
// reproduce — also when `slots` is empty (the call count is part of the trajectory
// that conformance compares) — and ask only for the slots whose logits can change
// the outcome (e.g. masked slots up to the active block's end).
// A model call that recomputes only canvas rows [query_begin, query_end) of ONE
// canvas (at their absolute positions) and attends to the source's KV cache for
// `cached_spans` in addition (cache policies: prefix cache, dual cache, ...).
// Logits for slot s come from row logit_row_for_slot(s), or from row s itself when
// that row lies before query_begin. This is what Fast-dLLM's Dream block decoder does:
// it shifts the logits of the window it feeds, cat(l[:, :1], l[:, :-1]), so the
// window's first slot is scored by its own row (checked against
// generation_utils_block.py; LLaDA has no shift and always uses row s).
// Slots must lie inside the query window; the spans must not overlap it.
struct CachedQuery {
  int query_begin = 0, query_end = 0;
  std::vector<std::pair<int32_t, int32_t>> cached_spans;  // canvas positions [begin, end) read from the cache
  bool store_kv = false;  // write the recomputed rows' K/V into the cache
  std::vector<int32_t> slots;  // slots whose logits are returned, [slots.size()][vocab]
  // Also return the window's last row, unshifted, after the slots' rows: the AR
  // prediction of position query_end (Fast-dLLM v2's token after a finished block).
  bool next_token_row = false;
};

struct LogitSource {
  int vocab = 0;
  // Attention pattern every call runs with (ForwardBatch::attention_block): -1 = the
  // model's own, 0 = bidirectional, B = block-causal with blocks of B. Block decoders
  // check it against their block length.
  int attention_block = -1;
  std::function<void(const std::vector<std::vector<int32_t>>& canvases, const std::vector<int32_t>& slots,
                     std::vector<float>& out)>
      score;
  // Optional (empty when the source keeps no KV cache). The source owns one cache,
  // sized to the canvas of its last call (a canvas of another length resets it); a
  // call with store_kv over the whole canvas (re)fills it. Reading a cached position
  // that no call has written since the reset throws Error. Decoders call it exactly
  // once per model call of their reference, like `score` (also with no slots).
  std::function<void(const std::vector<int32_t>& canvas, const CachedQuery& query, std::vector<float>& out)>
      score_cached;
};

// A LogitSource running the model's forward (full recompute, LM head only on the
// rows that score `slots`). Borrows `model`.
struct LogitSourceOptions {
  // Double accumulation in every matmul and attention (ForwardBatch::reference_precision):
  // slow; for conformance on trajectories whose reference was checked against float64.
  bool reference_precision = false;
  int attention_block = -1;  // see LogitSource::attention_block
};
LogitSource model_logit_source(const Model& model, const LogitSourceOptions& options = {});

// Emitted after every denoising step. `canvas` is the canvas after the step;
// `committed` lists the slots written this step, `masked` the slots still holding the
// mask id after it (ascending).
struct StepEvent {
  int step = 0;
  int total_steps = 0;  // best estimate; 0 when unknown
  const std::vector<int32_t>* canvas = nullptr;
  std::vector<int32_t> committed;
  std::vector<int32_t> masked;
  int prompt_length = 0;
  int32_t mask_id = -1;
};
using StepCallback = std::function<void(const StepEvent&)>;

// ---- ML-GSAI/LLaDA generate.py::generate -----------------------------------------
enum class Remasking { kLowConfidence, kRandom };

struct LladaGenerateOptions {
  int gen_length = 128, steps = 128, block_length = 128;
  double temperature = 0.0;   // >0: Gumbel-max in float64
  double cfg_scale = 0.0;     // >0: classifier-free guidance (prompt slots masked in the uncond canvas)
  Remasking remasking = Remasking::kLowConfidence;
  int32_t mask_id = -1;
  bool logits_eos_inf = false;          // EOS logit -> -inf before argmax
  bool confidence_eos_eot_inf = false;  // see model-zoo.md: reference's chained assignment
  int32_t eos_id = -1, eot_id = -1;
  uint64_t seed = 0;
};
// Returns the final canvas [prompt | gen_length]. Throws Error on invalid options
// (gen_length % block_length, steps % num_blocks, missing mask id).
std::vector<int32_t> llada_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                    const LladaGenerateOptions& opt, const StepCallback& on_step = {});

// Which K/V a Fast-dLLM decoder reuses between the full forward at each block start
// and the calls that follow it inside the block (docs/decoders.md, "Cache policies").
//   kNone:   every call recomputes the whole canvas.
//   kPrefix: calls recompute [block start, canvas end); the prefix's K/V come from the
//            block-start forward.
//   kDual:   calls recompute the block only; prefix and suffix K/V come from the
//            block-start forward (the suffix's stay stale until the next block).
enum class CachePolicy { kNone, kPrefix, kDual };
bool parse_cache_policy(const std::string& s, CachePolicy* out);  // "none" | "prefix" | "dual"

// ---- NVlabs/Fast-dLLM llada/generate.py: generate / generate_with_prefix_cache /
//      generate_with_dual_cache --------------------------------------------------------
// Same blocks and schedule as llada_generate, but: softmax confidence in float64; each
// block loops until it has no mask; with `threshold` every step commits the most
// confident masked slot (up to the block end) plus every other one with confidence
// >= threshold; with `factor` (takes precedence) the reference's factor rule.
// `cache` picks the upstream function: kNone = generate; kPrefix / kDual = the cached
// variants, which open each block with a full forward that fills the source's cache
// and always make at least one cached call after it (needs LogitSource::score_cached).
struct FastDllmLladaOptions {
  int gen_length = 128, steps = 128, block_length = 128;
  double temperature = 0.0;  // >0: Gumbel-max in float64
  Remasking remasking = Remasking::kLowConfidence;
  int32_t mask_id = -1;
  std::optional<double> threshold;  // none: the per-block schedule
  std::optional<double> factor;
  CachePolicy cache = CachePolicy::kNone;
  uint64_t seed = 0;
};
// Throws Error on invalid options, and where the reference would fail or never end:
// the schedule runs out while the block still holds a mask (IndexError upstream), or
// at temperature 0 a step changes nothing (the argmax is the mask id: upstream loops
// forever).
std::vector<int32_t> fast_dllm_llada_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                              const FastDllmLladaOptions& opt, const StepCallback& on_step = {});

// ---- Dream DreamGenerationMixin.diffusion_generate ----------------------------------
// kConfidenceThreshold is NVlabs/Fast-dLLM dream/model/generation_utils.py's addition
// (no cache): (#masks / steps) slots per step plus deferred ones, committing the top-1
// and those with confidence >= threshold; the others are deferred, and steps are
// extended at the end until all are committed. Needs #masks % steps == 0.
enum class DreamAlg { kOrigin, kMaskgitPlus, kTopkMargin, kEntropy, kConfidenceThreshold };

struct DreamGenerateOptions {
  int max_new_tokens = 512, steps = 512;
  double eps = 1e-3;
  double temperature = 0.0;
  double top_p = 1.0;   // applied when < 1
  int top_k = 0;        // 0 = none; Dream's HF path inherits 50 when not passed
  DreamAlg alg = DreamAlg::kOrigin;
  double alg_temp = 0.0;
  double threshold = 0.9;  // kConfidenceThreshold only
  int32_t mask_id = -1;
  uint64_t seed = 0;
};
// Returns the final canvas [prompt | max_new_tokens]. Throws Error on invalid options.
std::vector<int32_t> dream_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                    const DreamGenerateOptions& opt, const StepCallback& on_step = {});

// ---- NVlabs/Fast-dLLM dream/model/generation_utils_block.py -----------------------
// Dream in blocks of `block_length` with a KV cache (kPrefix or kDual; upstream has no
// uncached path). steps / num_blocks steps per block. Per block: one full forward
// that fills the cache and commits the block's first slot unconditionally (argmax of
// its shifted row); then cached calls on [block start, canvas end) (prefix) or on the
// block (dual), logits shifted within that window, until the block has no mask:
//   alg kConfidenceThreshold: k = #masks in the block; of the top k by p[x0] the best
//     commits, the others unless p < threshold (float32);
//   any other alg: negative entropy (upstream ignores `alg` here), ts =
//     linspace(1, eps, steps_per_block + 1), loop index i from 1: k = int(n (1 - ts[i+1]
//     / ts[i])), all at i = steps_per_block - 1; at i = steps_per_block the call's
//     result is dropped and the block ends.
// dream.threshold / alg / alg_temp / top_k / top_p / temperature / eps / steps /
// max_new_tokens / mask_id / seed mean what they mean for dream_generate.
struct DreamBlockOptions {
  DreamGenerateOptions dream;
  int block_length = 32;
  CachePolicy cache = CachePolicy::kPrefix;
};
// Returns the final canvas [prompt | max_new_tokens]. Throws Error on invalid options
// (layout, kNone, no score_cached) and where upstream would loop forever (at
// temperature 0 a threshold call changes nothing: the argmax is the mask id).
std::vector<int32_t> dream_block_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                          const DreamBlockOptions& opt, const StepCallback& on_step = {});

// ---- unmask's own block decoder (src/decode/block_*.cpp, docs/decoders.md) ---------
// A semi-autoregressive decoder for speed, composed of separately tested parts:
// fused scoring, commit rules, cache policies, EOS early stop with dynamic length,
// and infilling. It reproduces no paper: with BlockCache::kNone, BlockCommit::kTopN,
// BlockScore::kConfidence, a fixed canvas and temperature 0 it commits what
// llada_generate commits (whenever the reference never commits the mask id, which
// this decoder never does).

// Per-slot score the commit rules rank by (larger = surer).
enum class BlockScore { kConfidence, kMargin, kNegEntropy };
// Which of the active block's masked slots a step commits (always at least one):
//   kTopN:      the schedule's n_k (LLaDA's get_num_transfer_tokens over steps_per_block);
//   kThreshold: every slot with score >= threshold, at least the best (Fast-dLLM);
//   kFactor:    sorted scores c_1 >= c_2 >= ...: the largest n with c_i >= 1 - f/(i+1)
//               for every i <= n (Fast-dLLM's rule without upstream's off-by-one);
//   kDynamic:   every slot with score > threshold if that is at least n_k, else the top
//               n_k (LLaDA2 / SDAR).
enum class BlockCommit { kTopN, kThreshold, kFactor, kDynamic };
// Which K/V a step reuses (active block [start, end) of a canvas of length L):
//   kNone:   every step is a full forward over the canvas (LogitSource::score).
//   kPrefix: block start: full forward storing all K/V; then rows [start-1, L).
//   kDual:   block start: the same; then rows [start-1, end), written back.
//   kWindow: ours. Block start: the same; then rows [start-W, end+W) clamped to the
//            canvas, all written back: the W committed slots before the block and the
//            W slots after it are refreshed every step (docs/decoders.md).
//   kDelayed: ours. kWindow, but after the block's first call the recomputed range
//            shrinks to the block's masked slots plus the slots the previous step
//            committed (delayed caching: a committed slot is stored once with its
//            token, then read from the cache), widened by W on each side
//            (docs/cache-policies.md).
// Windows begin one row early so a family with a logit shift scores the block's first
// slot from its proper row (LogitSource: a slot whose row lies before the window is
// scored by its own row).
enum class BlockCache { kNone, kPrefix, kDual, kWindow, kDelayed };

struct BlockDecoderOptions {
  // Length: max_tokens > 0 = dynamic length (the canvas grows block by block: the prompt,
  // the finished blocks and the active block; no trailing masks; the last block may be
  // shorter); else gen_length > 0 = a fixed canvas of gen_length masks from the start,
  // with the reference layout (gen_length % block_length == 0). Ignored by block_infill.
  int max_tokens = 0, gen_length = 0;
  int block_length = 32;
  // Steps over the whole length, for the kTopN / kDynamic schedule; 0 = one slot per
  // step. Fixed canvas: steps % blocks == 0 and steps / blocks per block, as
  // llada_generate; dynamic length and infill: max(1, steps * block_length / length)
  // per block (length = max_tokens, or the number of holes' masks).
  int steps = 0;
  BlockScore score = BlockScore::kConfidence;
  BlockCommit commit = BlockCommit::kThreshold;
  double threshold = 0.9;  // kThreshold, kDynamic
  double factor = 1.0;     // kFactor
  BlockCache cache = BlockCache::kDual;
  int refresh_window = 16;  // kWindow, kDelayed: W
  // Cached policies: block steps 0, R, 2R, ... (R = refresh_every > 0) are full forwards
  // that store all K/V again (with dynamic length step 0 too, instead of the grown-canvas
  // call); 0 = only a fixed or infill canvas's block starts.
  int refresh_every = 0;
  // Sampling: temperature 0 = argmax; else softmax(logits / T) after top-k (> 0) and
  // top-p (< 1) filters, one seeded draw per slot. The mask id is never a candidate.
  double temperature = 0.0, top_p = 1.0;
  int top_k = 0;
  uint64_t seed = 0;
  int32_t mask_id = -1;
  // End tokens (eos, eot). Decoding stops once one is committed with no mask before it
  // (block_decode only); empty = never stop early.
  std::vector<int32_t> end_ids;
};

struct BlockDecodeResult {
  // block_decode: [prompt | answer | end token] when an end token stopped it, else
  // [prompt | every generated slot]. block_infill: the filled canvas.
  std::vector<int32_t> canvas;
  int prompt_length = 0;
  int forwards = 0;   // model calls (score + score_cached)
  int generated = 0;  // slots committed that are part of the output (end token excluded)
  bool ended = false; // an end token stopped decoding
};

// Throws Error on invalid options (lengths, threshold, factor, temperature, ids, a
// cache policy without LogitSource::score_cached).
BlockDecodeResult block_decode(const LogitSource& src, const std::vector<int32_t>& prompt,
                               const BlockDecoderOptions& opt, const StepCallback& on_step = {});

// Infilling: `canvas` holds mask_id anywhere. Each maximal run of masks, cut into
// block_length pieces, is a block, decoded left to right with the same rules; the
// non-mask slots never change. Cache windows are positional as in block_decode (the
// "suffix" is whatever follows the block: text and later holes). No EOS stop.
BlockDecodeResult block_infill(const LogitSource& src, const std::vector<int32_t>& canvas,
                               const BlockDecoderOptions& opt, const StepCallback& on_step = {});

// An infill template: text with holes. `{mask:N}` is N mask slots (N >= 1), `{{` is a
// literal `{`, a lone `}` is literal; any other `{` is an error (Error names the offset).
// Escapes `\n`, `\t`, `\\` become newline, tab, backslash (shell single quotes keep them).
struct InfillSegment {
  std::string text;  // when masks == 0
  int masks = 0;
};
std::vector<InfillSegment> parse_infill_template(const std::string& tmpl);

bool parse_block_score(const std::string& s, BlockScore* out);    // confidence | margin | entropy
bool parse_block_commit(const std::string& s, BlockCommit* out);  // topn | threshold | factor | dynamic
bool parse_block_cache(const std::string& s, BlockCache* out);    // none | prefix | dual | window | delayed

// ---- Block-causal families (src/decode/{llada2,sdar,fast_dllm_v2}_generate.cpp) ------
// Token choice shared by the three: logits / temperature (when > 0), then top-k (> 0)
// and top-p (< 1) filters, softmax; x0 = argmax at temperature 0 (the references sample
// even then; see docs/families.md), else one seeded draw; p = x0's probability.
// Each needs a LogitSource whose attention_block equals its block length (Error if not).

// inclusionAI/dFactory LLaDA2MoeModelLM.generate: canvas = ceil((P + gen) / B) blocks;
// from block P / B on, each step re-runs the model on the canvas up to the block's end
// (block-causal, no cache) and commits every masked slot of the block with p > threshold
// when there are at least sched[step] of them, else the top min(sched[step], #masks) by
// p (sched = get_num_transfer_tokens(block_length, steps), steps = min(steps,
// gen_length / minimal_topk)). Stops after a block holding eos (or, eos_early_stop, once
// an eos has no mask before it).
struct Llada2GenerateOptions {
  int gen_length = 2048, block_length = 32, steps = 32, minimal_topk = 1;
  double threshold = 0.95;
  double temperature = 0.0, top_p = 1.0;
  int top_k = 0;
  int32_t mask_id = -1, eos_id = -1;
  bool eos_early_stop = false;
  uint64_t seed = 0;
};
struct BlockGenerateResult {
  std::vector<int32_t> canvas;  // the whole canvas as last written
  std::vector<int32_t> output;  // prompt + the returned ids (cut after the first end token)
};
BlockGenerateResult llada2_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                    const Llada2GenerateOptions& opt, const StepCallback& on_step = {});

// JetAstra/SDAR generate.py::block_diffusion_generate with an exact KV cache: prefill
// the first P / B full blocks (K/V stored); then per block: calls on the block alone
// over the cached prefix (nothing stored) until it has no mask, then ONE more call on
// the finished block that stores its K/V. sched = get_num_transfer_tokens(B, steps).
//   kSequential:            the first sched[step] masks, left to right;
//   kLowConfidenceStatic:   the top sched[step] by p;
//   kLowConfidenceDynamic:  every mask with p > threshold if at least sched[step], else the top sched[step];
//   kEntropyBounded:        masks by ascending entropy while the running sum of entropies
//                           stays < eb_threshold, at least one (the documented intent;
//                           upstream's is broken at the pinned commit).
// Stops after a block in which a stop id appears after the prompt.
enum class SdarStrategy { kSequential, kLowConfidenceStatic, kLowConfidenceDynamic, kEntropyBounded };
bool parse_sdar_strategy(const std::string& s, SdarStrategy* out);
struct SdarGenerateOptions {
  int gen_length = 128, block_length = 4, denoising_steps = 4;
  double temperature = 0.0, top_p = 1.0;
  int top_k = 0;
  SdarStrategy strategy = SdarStrategy::kLowConfidenceDynamic;
  double confidence_threshold = 0.85, eb_threshold = 0.35;
  int32_t mask_id = -1;
  std::vector<int32_t> stop_ids;
  uint64_t seed = 0;
};
// Returns the whole canvas (ceil((P + gen) / B) · B slots).
std::vector<int32_t> sdar_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                   const SdarGenerateOptions& opt, const StepCallback& on_step = {});

// HF Fast_dLLM_QwenForCausalLM.generate (Fast-dLLM v2): prefill P / B full blocks (cache,
// block-causal); blocks of block_size, each cut into sub-blocks of small_block_size
// decoded left to right: a call on the block (or, use_block_cache, on the sub-block over
// the block's cached K/V once its first slot is known), logits shifted within the window,
// commits every mask of the sub-block with p > threshold plus always the most confident
// one. A finished block is run once more storing its K/V; the argmax of its last row is
// the next block's first token. Stops once stop_token is committed with no mask before it.
struct FastDllmV2Options {
  int max_new_tokens = 512, block_size = 32, small_block_size = 8;
  double threshold = 1.0;
  double temperature = 0.0, top_p = 0.95;
  bool use_block_cache = false;
  int32_t mask_id = -1, stop_token = -1;
  uint64_t seed = 0;
};
// Returns prompt + generated ids, cut after the stop token.
std::vector<int32_t> fast_dllm_v2_generate(const LogitSource& src, const std::vector<int32_t>& prompt,
                                           const FastDllmV2Options& opt, const StepCallback& on_step = {});

bool parse_remasking(const std::string& s, Remasking* out);
bool parse_dream_alg(const std::string& s, DreamAlg* out);

}  // namespace unmask
