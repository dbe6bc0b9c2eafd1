#include "canvas_view.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace unmask::cli {

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) == 1; }

void CanvasView::on_step(const StepEvent& e) {
  if (!enabled_ || !e.canvas) return;
  const auto& canvas = *e.canvas;
  std::string frame;
  char head[96];
  std::snprintf(head, sizeof head, "\x1b[1mstep %d%s%s\x1b[0m\n", e.step + 1, e.total_steps ? "/" : "",
                e.total_steps ? std::to_string(e.total_steps).c_str() : "");
  frame += head;
  for (size_t i = size_t(e.prompt_length); i < canvas.size(); ++i) {
    const bool fresh = std::find(e.committed.begin(), e.committed.end(), int32_t(i)) != e.committed.end();
    if (canvas[i] == e.mask_id) {
      frame += "\x1b[2m\xe2\x96\x91\x1b[0m";  // dim light-shade block for a masked slot
    } else {
      std::string piece = piece_(canvas[i]);
      std::string safe;
      for (char ch : piece) safe += (ch == '\n') ? std::string("\xe2\x86\xb5\n") : std::string(1, ch);
      frame += fresh ? "\x1b[1;32m" + safe + "\x1b[0m" : safe;
    }
  }
  frame += "\n";
  // Move up over the previous frame and clear it.
  std::string erase;
  for (int i = 0; i < lines_drawn_; ++i) erase += "\x1b[1A\x1b[2K";
  erase += "\r\x1b[2K";
  std::fputs((erase + frame).c_str(), stdout);
  std::fflush(stdout);
  lines_drawn_ = int(std::count(frame.begin(), frame.end(), '\n'));
}

void CanvasView::finish() {
  if (enabled_ && lines_drawn_) std::fputs("\n", stdout);
}

}  // namespace unmask::cli
