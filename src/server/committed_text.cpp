#include "server/committed_text.h"

#include <algorithm>

namespace unmask::server {

CommittedText::CommittedText(const Tokenizer& tokenizer, int32_t mask_id, std::vector<int32_t> end_ids,
                             std::vector<std::string> stop)
    : decoder_(tokenizer, DecodeOptions{.skip_special = true, .clean_up_spaces = std::nullopt}),
      mask_id_(mask_id),
      end_ids_(std::move(end_ids)) {
  for (std::string& s : stop)
    if (!s.empty()) stop_.push_back(std::move(s));
  for (const std::string& s : stop_) longest_stop_ = std::max(longest_stop_, s.size());
}

void CommittedText::find_stop(size_t from) {
  size_t best = std::string::npos;
  for (const std::string& s : stop_) best = std::min(best, text_.find(s, from));
  if (best == std::string::npos) return;
  text_.resize(best);
  stopped_ = true;
}

std::string CommittedText::take(bool all) {
  size_t end = text_.size();
  if (!all && longest_stop_ > 1) {
    // A stop string may begin in the last longest_stop_ - 1 bytes: hold them back, and
    // never cut inside a UTF-8 character (continuation bytes are 10xxxxxx).
    end = end > longest_stop_ - 1 ? end - (longest_stop_ - 1) : 0;
    while (end > emitted_ && end < text_.size() && (static_cast<unsigned char>(text_[end]) & 0xC0) == 0x80) --end;
  }
  if (end <= emitted_) return {};
  std::string delta = text_.substr(emitted_, end - emitted_);
  emitted_ = end;
  return delta;
}

std::string CommittedText::update(std::span<const int32_t> answer) {
  if (stopped_ || ended_) return {};
  const size_t before = text_.size();
  while (size_t(consumed_) < answer.size()) {
    const int32_t id = answer[size_t(consumed_)];
    if (id == mask_id_) break;
    if (std::find(end_ids_.begin(), end_ids_.end(), id) != end_ids_.end()) {
      ended_ = true;
      break;
    }
    text_ += decoder_.push(id);
    ++consumed_;
  }
  if (ended_) {
    text_ += decoder_.finish();
    flushed_ = true;
  }
  // A stop string may straddle the old end: search from where it could begin.
  find_stop(before >= longest_stop_ ? before - longest_stop_ + 1 : 0);
  return take(stopped_ || ended_);
}

std::string CommittedText::finish() {
  if (!stopped_ && !flushed_) {
    const size_t before = text_.size();
    text_ += decoder_.finish();
    flushed_ = true;
    find_stop(before >= longest_stop_ ? before - longest_stop_ + 1 : 0);
  }
  return take(true);
}

}  // namespace unmask::server
