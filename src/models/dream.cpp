// Dream (DreamModel: Qwen2 names and config fields, q/k/v bias, no o_proj bias).
// Fully bidirectional attention; HF Qwen2 RoPE (cos/sin cast to the activation
// dtype); logits are AR-style, so slot p is scored by row p-1 (logit_shift 1).
#include "models/registry.h"
#include "unmask/error.h"

namespace unmask {

namespace {

void read_dream_config(const JsonFields& c, ModelConfig& m) {
  read_hf_config(c, m);
  if (m.ffn <= 0) throw Error(c.file() + ": field 'intermediate_size' is missing");
  m.qkv_bias = true;
  m.logit_shift = 1;
}

}  // namespace

const FamilyBinding& dream_family() {
  static const FamilyBinding f{"dream", {"DreamModel"}, {"Dream", "dream"}, read_dream_config, bind_hf_dense_model};
  return f;
}

}  // namespace unmask
