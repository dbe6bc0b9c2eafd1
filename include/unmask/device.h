// unmask/device.h — which compute devices this build and this machine offer.
//
// Owns nothing and borrows nothing: probe_cuda() asks the CUDA runtime (when the build
// linked it, UNMASK_HAVE_CUDA) and returns plain values. Forwards run on the CPU only for
// now: the CUDA backend (issue 9) waits for a GPU to test on, so --device cuda fails with
// a message that says which of the three reasons applies (no CUDA in this build, no device
// or driver on this machine, or no CUDA forward yet).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace unmask {

enum class DeviceKind { kCpu, kCuda };

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  int multiprocessors = 0;
  uint64_t memory_bytes = 0;
};

struct CudaProbe {
  bool built = false;          // the build linked the CUDA runtime
  int runtime_version = 0;     // e.g. 13000 for 13.0 (0 when not built)
  int driver_version = 0;      // 0 when no driver is installed
  std::string error;           // why no device was found (empty when devices exist)
  std::vector<CudaDeviceInfo> devices;
};

CudaProbe probe_cuda();

// "cpu" | "cuda"; anything else throws Error naming the value.
DeviceKind parse_device(const std::string& name);

// Throws Error unless forwards can run on `kind` in this build on this machine.
void require_forward_device(DeviceKind kind);

}  // namespace unmask
