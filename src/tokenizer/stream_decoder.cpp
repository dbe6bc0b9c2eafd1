// tokenizer/stream_decoder.cpp — incremental detokenization that never splits a
// UTF-8 character (a diffusion canvas commits tokens out of order; the front end
// pushes the settled prefix as it grows).
//
// With a plain ByteLevel decoder the text is the UTF-8 repair of the concatenated
// token bytes, cut at added tokens: bytes are held back only while they could still
// complete a character. Other decoder chains are re-decoded in full and the new tail
// is emitted. With clean_up_tokenization_spaces on, a tail that could start one of
// the clean-up patterns (" .", " n't", ...) is held until the next token decides it.
#include <utility>

#include "unmask/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace unmask {

struct StreamDecoder::State {
  std::shared_ptr<const Tokenizer::Impl> impl;
  DecodeOptions options;
  bool cleanup = false;
  bool byte_level = false;
  std::string pending_bytes;  // byte-level: bytes of an unfinished character
  std::string held_text;      // repaired text not yet emitted (clean-up look-ahead)
  std::vector<int32_t> all_ids;  // generic path: everything pushed so far
  size_t emitted_generic = 0;

  std::string take_ready(bool final);
  std::string push_one(int32_t id);
};

namespace {

// Length of the longest suffix of `s` that is a proper prefix of a clean-up pattern.
size_t cleanup_hold(std::string_view s) {
  static const std::string_view kPatterns[] = {" .", " ?", " !", " ,", " ' ", " n't", " 'm", " 's", " 've", " 're"};
  size_t best = 0;
  for (std::string_view p : kPatterns) {
    for (size_t len = std::min(p.size() - 1, s.size()); len > best; --len) {
      if (s.substr(s.size() - len) == p.substr(0, len)) {
        best = len;
        break;
      }
    }
  }
  return best;
}

}  // namespace

std::string StreamDecoder::State::take_ready(bool final) {
  if (!cleanup) return std::exchange(held_text, std::string());
  const size_t hold = final ? 0 : cleanup_hold(held_text);
  std::string ready = tok::clean_up_tokenization(held_text.substr(0, held_text.size() - hold));
  held_text.erase(0, held_text.size() - hold);
  return ready;
}

std::string StreamDecoder::State::push_one(int32_t id) {
  impl->check_id(id);
  if (options.skip_special && impl->flag(id, Tokenizer::Impl::kSkipSpecial)) return {};
  if (impl->flag(id, Tokenizer::Impl::kAddedContent)) {
    // Added tokens pass through as text and end the current byte run.
    if (!pending_bytes.empty()) tok::append_sanitized_utf8(held_text, std::exchange(pending_bytes, std::string()));
    held_text += impl->model->id_to_token(id);
  } else {
    tok::append_byte_level_bytes(impl->model->id_to_token(id), pending_bytes);
    const size_t complete = tok::complete_utf8_prefix(pending_bytes);
    tok::append_sanitized_utf8(held_text, std::string_view(pending_bytes).substr(0, complete));
    pending_bytes.erase(0, complete);
  }
  return take_ready(false);
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, const DecodeOptions& options)
    : state_(std::make_unique<State>()) {
  state_->impl = tokenizer.impl_;
  state_->options = options;
  state_->cleanup = options.clean_up_spaces.value_or(state_->impl->clean_up_spaces);
  state_->byte_level = state_->impl->decoder && state_->impl->decoder->is_plain_byte_level();
}

StreamDecoder::~StreamDecoder() = default;
StreamDecoder::StreamDecoder(StreamDecoder&&) noexcept = default;
StreamDecoder& StreamDecoder::operator=(StreamDecoder&&) noexcept = default;

std::string StreamDecoder::push(int32_t id) {
  const int32_t one[] = {id};
  return push(one);
}

std::string StreamDecoder::push(std::span<const int32_t> ids) {
  State& s = *state_;
  if (s.byte_level) {
    std::string out;
    for (int32_t id : ids) out += s.push_one(id);
    return out;
  }
  for (int32_t id : ids) s.impl->check_id(id);
  s.all_ids.insert(s.all_ids.end(), ids.begin(), ids.end());
  Tokenizer tok(s.impl);
  DecodeOptions opts = s.options;
  const std::string full = tok.decode(s.all_ids, opts);
  // Hold back a trailing replacement character: more tokens may complete it.
  size_t ready = full.size();
  while (ready >= 3 && full.compare(ready - 3, 3, "\xEF\xBF\xBD") == 0) ready -= 3;
  if (ready <= s.emitted_generic) return {};
  std::string out = full.substr(s.emitted_generic, ready - s.emitted_generic);
  s.emitted_generic = ready;
  return out;
}

std::string StreamDecoder::finish() {
  State& s = *state_;
  if (s.byte_level) {
    if (!s.pending_bytes.empty()) tok::append_sanitized_utf8(s.held_text, std::exchange(s.pending_bytes, std::string()));
    return s.take_ready(true);
  }
  Tokenizer tok(s.impl);
  const std::string full = tok.decode(s.all_ids, s.options);
  std::string out = full.size() > s.emitted_generic ? full.substr(s.emitted_generic) : std::string();
  s.emitted_generic = full.size();
  return out;
}

}  // namespace unmask
