// tests/test_decode_util.h — a crafted LogitSource for decoder tests.
//
// FakeSource serves fixed logit rows per slot (or computes them from the canvas via
// `fn`) and records every call: the canvases it saw and the slots it was asked for.
#pragma once
#include <cmath>
#include <functional>
#include <map>
#include <vector>

#include "unmask/decode.h"

namespace unmask::testing {

struct FakeSource {
  int vocab = 0;
  std::map<int, std::vector<float>> rows;  // slot -> logits [vocab]; missing slots: all zero
  // When set, replaces `rows`: logits of `slot` for canvas number `c` of the call.
  std::function<std::vector<float>(const std::vector<int32_t>& canvas, int c, int slot)> fn;
  std::vector<std::vector<std::vector<int32_t>>> canvases;  // per call
  std::vector<std::vector<int32_t>> slots;                  // per call

  LogitSource source() {
    LogitSource src;
    src.vocab = vocab;
    src.score = [this](const std::vector<std::vector<int32_t>>& cv, const std::vector<int32_t>& sl,
                     std::vector<float>& out) {
      canvases.push_back(cv);
      slots.push_back(sl);
      out.clear();
      for (size_t c = 0; c < cv.size(); ++c)
        for (int32_t s : sl) {
          std::vector<float> r = fn ? fn(cv[c], int(c), s) : row(s);
          out.insert(out.end(), r.begin(), r.end());
        }
    };
    return src;
  }
  std::vector<float> row(int slot) const {
    auto it = rows.find(slot);
    return it != rows.end() ? it->second : std::vector<float>(size_t(vocab), 0.0f);
  }
};

// A row whose argmax is `token` with softmax probability `p` (others equal, logit 0).
inline std::vector<float> peaked_row(int vocab, int token, double p) {
  std::vector<float> r(size_t(vocab), 0.0f);
  r[size_t(token)] = float(std::log(p * (vocab - 1) / (1 - p)));
  return r;
}

}  // namespace unmask::testing
