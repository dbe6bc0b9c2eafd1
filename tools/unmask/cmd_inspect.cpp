// `unmask inspect -m DIR`: what a model folder holds, without running it.
#include <cstdio>
#include <map>
#include <string>

#include "commands.h"
#include "unmask/gguf.h"
#include "unmask/model.h"

namespace unmask::cli {

namespace {
struct InspectArgs {
  std::string model_dir;
  std::string weights;
};

void run_inspect(const InspectArgs& a) {
  auto model = load_model(a.model_dir, LoadOptions{.weights_file = a.weights});
  const ModelConfig& c = model->config;
  std::map<std::string, std::pair<int, size_t>> by_dtype;
  if (model->store)
    for (const auto& [name, view] : model->store->all()) {
      auto& e = by_dtype[std::string(dtype_name(view.dtype))];
      e.first += 1;
      e.second += view.nbytes();
    }
  else  // a .gguf
    for (const GgufTensorInfo& t : model->gguf->header().tensors) {
      auto& e = by_dtype[std::string(dtype_name(t.dtype))];
      e.first += 1;
      e.second += t.nbytes;
    }
  std::printf("model        %s\n", a.model_dir.c_str());
  std::printf("weights      %s\n", model->store ? model->store->description().c_str()
                                               : ("GGUF v" + std::to_string(model->gguf->header().version)).c_str());
  std::printf("family       %s (%s)\n", c.family.c_str(), c.architecture.c_str());
  std::printf("parameters   %lld (active per token %lld)\n", static_cast<long long>(parameter_count(*model)),
              static_cast<long long>(active_parameter_count(*model)));
  for (const auto& [dt, e] : by_dtype)
    std::printf("dtype        %s: %d tensors, %.2f MiB\n", dt.c_str(), e.first, double(e.second) / (1 << 20));
  std::printf("shape        hidden %d, layers %d, heads %d (kv %d, dim %d), ffn %d, vocab %d\n", c.hidden,
              c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn, c.vocab);
  const std::string pattern =
      c.attention_block > 0 ? "block-causal (block " + std::to_string(c.attention_block) + ")" : "bidirectional";
  std::printf("attention    %s, RoPE theta %g on %d of %d dims, qkv bias %s, qk norm %s, logit shift %d\n",
              pattern.c_str(), c.rope_theta, c.rotary_dim > 0 ? c.rotary_dim : c.head_dim, c.head_dim,
              c.qkv_bias ? "yes" : "no", c.qk_norm ? "yes" : "no", c.logit_shift);
  const MoeConfig& moe = c.moe;
  if (moe.n_experts > 0)
    std::printf("experts      %d per MoE layer (layers %d..%d), top %d, width %d, shared %d, %s router%s, "
                "groups %d keep %d, %s, scaling %g\n",
                moe.n_experts, moe.first_dense_layers, c.n_layers - 1, moe.top_k, moe.expert_ffn, moe.shared_ffn,
                moe.score == RouterScore::kSoftmax ? "softmax" : "sigmoid", moe.expert_bias ? " + expert bias" : "",
                moe.n_group, moe.topk_group, moe.renormalize ? "renormalised" : "not renormalised", moe.scaling);
  std::printf("context      %lld tokens\n", static_cast<long long>(c.max_context));
  std::printf("special      mask %d, bos %d, eos %d, pad %d, eot %d\n", c.special.mask, c.special.bos, c.special.eos,
              c.special.pad, c.special.eot);
}
}  // namespace

void register_inspect(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand("inspect", "Show a model folder's family, size, dtypes and special tokens");
  cmd->add_option("-m,--model", args->model_dir, "Model folder (config.json + safetensors)")->required();
  cmd->add_option("--weights", args->weights, "Weights file inside the folder (default: model.safetensors / index)");
  cmd->callback([args] { run_inspect(*args); });
}

}  // namespace unmask::cli
