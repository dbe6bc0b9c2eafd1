// `unmask devices`: the CPU kernel set and the CUDA devices this build can see; and the
// --device option shared by the commands that run forwards.
#include <cstdio>

#include "commands.h"
#include "ops/cpu/matmul.h"
#include "unmask/device.h"

namespace unmask::cli {

void add_device_option(CLI::App* cmd) {
  // Checked while parsing, so a bad or unavailable device stops the command before any
  // model is loaded.
  cmd->add_option_function<std::string>(
      "--device", [](const std::string& name) { require_forward_device(parse_device(name)); },
      "Compute device: cpu (default) | cuda");
}

void register_devices(CLI::App& app) {
  auto* cmd = app.add_subcommand("devices", "List the compute devices this build can use");
  cmd->callback([] {
    std::printf("cpu    kernels %s\n", ops::isa_name(ops::best_isa()));
    const CudaProbe p = probe_cuda();
    if (!p.built) {
      std::printf("cuda   not built: %s\n", p.error.c_str());
      return;
    }
    std::printf("cuda   runtime %d.%d, driver %d.%d\n", p.runtime_version / 1000, p.runtime_version % 1000 / 10,
                p.driver_version / 1000, p.driver_version % 1000 / 10);
    if (p.devices.empty()) std::printf("cuda   no device: %s\n", p.error.c_str());
    for (const CudaDeviceInfo& d : p.devices)
      std::printf("cuda:%d %s, compute %d.%d, %d SMs, %.1f GiB (no CUDA forward yet)\n", d.index, d.name.c_str(),
                  d.compute_major, d.compute_minor, d.multiprocessors, double(d.memory_bytes) / (1 << 30));
  });
}

}  // namespace unmask::cli
