// Device probe (see unmask/device.h). The CUDA runtime API is plain C: this file is
// compiled by the C++ compiler and linked with the static CUDA runtime when CMake found
// the toolkit (UNMASK_HAVE_CUDA); without it probe_cuda() reports built = false.
#include "unmask/device.h"

#include "unmask/error.h"

#ifdef UNMASK_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace unmask {

CudaProbe probe_cuda() {
  CudaProbe p;
#ifdef UNMASK_HAVE_CUDA
  p.built = true;
  cudaRuntimeGetVersion(&p.runtime_version);
  if (cudaDriverGetVersion(&p.driver_version) != cudaSuccess) p.driver_version = 0;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    p.error = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status);
    // Without a driver the runtime reports a version mismatch; say what is missing.
    if (p.driver_version == 0) p.error = "no NVIDIA driver on this machine (" + p.error + ")";
    return p;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    p.devices.push_back(CudaDeviceInfo{.index = i,
                                       .name = prop.name,
                                       .compute_major = prop.major,
                                       .compute_minor = prop.minor,
                                       .multiprocessors = prop.multiProcessorCount,
                                       .memory_bytes = uint64_t(prop.totalGlobalMem)});
  }
  if (p.devices.empty()) p.error = "the CUDA runtime lists no device";
#else
  p.error = "this build has no CUDA runtime (configure with the CUDA toolkit installed)";
#endif
  return p;
}

DeviceKind parse_device(const std::string& name) {
  if (name == "cpu") return DeviceKind::kCpu;
  if (name == "cuda") return DeviceKind::kCuda;
  throw Error("unknown device '" + name + "' (known: cpu, cuda)");
}

void require_forward_device(DeviceKind kind) {
  if (kind == DeviceKind::kCpu) return;
  const CudaProbe p = probe_cuda();
  if (!p.built) throw Error("--device cuda: " + p.error);
  if (p.devices.empty()) throw Error("--device cuda: no usable GPU: " + p.error);
  throw Error("--device cuda: found " + p.devices.front().name +
              ", but unmask has no CUDA forward yet (it waits for a GPU to be tested on); use --device cpu");
}

}  // namespace unmask
