// Device selection: --device parsing, the CUDA probe, and the clear refusal of a device
// that cannot run forwards (every machine today: there is no CUDA forward yet, issue 9).
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"
#include "unmask/device.h"
#include "unmask/error.h"

namespace unmask {
namespace {

std::string refusal_of(DeviceKind kind) {
  try {
    require_forward_device(kind);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Device, ParsesKnownNamesAndNamesTheUnknownOne) {
  EXPECT_EQ(parse_device("cpu"), DeviceKind::kCpu);
  EXPECT_EQ(parse_device("cuda"), DeviceKind::kCuda);
  try {
    parse_device("tpu");
    FAIL() << "tpu accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'tpu'"), std::string::npos) << e.what();
  }
}

TEST(Device, CpuIsAlwaysAvailable) { EXPECT_EQ(refusal_of(DeviceKind::kCpu), ""); }

// The refusal names the reason the probe found, whichever machine runs the test.
TEST(Device, CudaRefusalSaysWhichReasonApplies) {
  const CudaProbe p = probe_cuda();
  const std::string why = refusal_of(DeviceKind::kCuda);
  ASSERT_EQ(why.rfind("--device cuda: ", 0), 0u) << why;
  if (!p.built) {
    EXPECT_NE(why.find("no CUDA runtime"), std::string::npos) << why;
  } else if (p.devices.empty()) {
    EXPECT_FALSE(p.error.empty());
    EXPECT_NE(why.find("no usable GPU: " + p.error), std::string::npos) << why;
  } else {
    EXPECT_NE(why.find(p.devices.front().name), std::string::npos) << why;
    EXPECT_NE(why.find("no CUDA forward yet"), std::string::npos) << why;
  }
}

TEST(Device, CliRefusesCudaBeforeLoadingAndListsDevices) {
  if (!test::cli_built()) GTEST_SKIP() << "CLI not built";
  test::TempDir scratch;
  // A model folder that does not exist: the device check must fail first.
  const auto run = test::run_command({test::cli_path(), "run", "--device", "cuda", "-m", "/nonexistent", "-p", "x"},
                                     scratch);
  EXPECT_TRUE(run.exited);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("--device cuda: "), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("/nonexistent"), std::string::npos) << run.err;

  const auto list = test::run_command({test::cli_path(), "devices"}, scratch);
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.rfind("cpu    kernels ", 0), 0u) << list.out;
  EXPECT_NE(list.out.find("\ncuda"), std::string::npos) << list.out;
}

}  // namespace
}  // namespace unmask
