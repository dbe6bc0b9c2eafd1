// committed_text.h — the text of an answer as its committed prefix grows.
//
// A diffusion decoder commits slots in any order; text can be shown only up to the first
// slot still masked. CommittedText turns successive views of the answer slots into
// text deltas that never change afterwards: it detokenizes the committed prefix
// incrementally (never a partial UTF-8 character), stops at an end token, cuts the text
// at the first stop string (which is not part of the answer) and holds back a tail that
// could still turn out to be the start of a stop string. Owns its decoder state; borrows
// the tokenizer, which must outlive it.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "unmask/tokenizer.h"

namespace unmask::server {

class CommittedText {
 public:
  CommittedText(const Tokenizer& tokenizer, int32_t mask_id, std::vector<int32_t> end_ids,
                std::vector<std::string> stop);
  // `answer`: the answer's slots after a step (mask_id = not yet decided). Returns the
  // text that became final with this step (possibly empty).
  std::string update(std::span<const int32_t> answer);
  // Decoding ended: returns the rest (the held-back tail unless it completed a stop string).
  std::string finish();
  bool stopped() const { return stopped_; }     // a stop string ended the answer
  bool ended() const { return ended_; }         // an end token ended the answer
  int tokens() const { return consumed_; }      // answer tokens read (up to the end / stop)
  const std::string& text() const { return text_; }  // everything final so far plus the held tail

 private:
  std::string take(bool all);  // the next delta: up to the held-back tail, or everything
  void find_stop(size_t from);

  StreamDecoder decoder_;
  int32_t mask_id_;
  std::vector<int32_t> end_ids_;
  std::vector<std::string> stop_;
  size_t longest_stop_ = 0;
  std::string text_;
  size_t emitted_ = 0;  // bytes of text_ already returned
  int consumed_ = 0;
  bool stopped_ = false, ended_ = false, flushed_ = false;
};

}  // namespace unmask::server
