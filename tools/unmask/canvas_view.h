// tools/unmask/canvas_view.h — live terminal view of a denoising canvas.
//
// When stdout is a terminal, redraws the generated part of the canvas after
// every step: masked slots dim, slots committed this step highlighted. Borrows
// the token-to-text function; owns only its own line bookkeeping.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "unmask/decode.h"

namespace unmask::cli {

class CanvasView {
 public:
  using PieceFn = std::function<std::string(int32_t)>;
  CanvasView(PieceFn piece, bool enabled) : piece_(std::move(piece)), enabled_(enabled) {}
  void on_step(const StepEvent& e);
  void finish();  // leaves the cursor below the last frame
  bool enabled() const { return enabled_; }

 private:
  PieceFn piece_;
  bool enabled_;
  int lines_drawn_ = 0;
};

bool stdout_is_terminal();

}  // namespace unmask::cli
