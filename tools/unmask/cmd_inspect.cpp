// `unmask inspect -m DIR`: what a model folder holds, without running it.
#include <cstdio>
#include <map>

#include "commands.h"
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
  for (const auto& [name, view] : model->store->all()) {
    auto& e = by_dtype[std::string(dtype_name(view.dtype))];
    e.first += 1;
    e.second += view.nbytes();
  }
  std::printf("model        %s\n", a.model_dir.c_str());
  std::printf("weights      %s\n", model->store->description().c_str());
  std::printf("family       %s (%s)\n", c.family.c_str(), c.architecture.c_str());
  std::printf("parameters   %lld\n", static_cast<long long>(parameter_count(*model)));
  for (const auto& [dt, e] : by_dtype)
    std::printf("dtype        %s: %d tensors, %.2f MiB\n", dt.c_str(), e.first, double(e.second) / (1 << 20));
  std::printf("shape        hidden %d, layers %d, heads %d (kv %d, dim %d), ffn %d, vocab %d\n", c.hidden,
              c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn, c.vocab);
  std::printf("attention    bidirectional, RoPE theta %g, qkv bias %s, logit shift %d\n", c.rope_theta,
              c.qkv_bias ? "yes" : "no", c.logit_shift);
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
