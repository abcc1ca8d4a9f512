#include "cuda/common/runtime.hpp"

namespace kvserve::detail::cuda {

Status cuda_status(cudaError_t e, std::string_view op, std::string_view what) {
  if (e == cudaSuccess) return Status::ok();
  return Status::cuda_error(std::string(op) + ": " + std::string(what) + ": " + cudaGetErrorName(e) + " (" +
                            cudaGetErrorString(e) + ")");
}

DeviceScope::DeviceScope(Device device) {
  int current = -1;
  error_ = cudaGetDevice(&current);
  if (error_ != cudaSuccess || current == device.ordinal) return;  // nothing to switch or restore
  error_ = cudaSetDevice(device.ordinal);
  if (error_ == cudaSuccess) previous_ = current;
}

DeviceScope::~DeviceScope() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

Result<DeviceFacts> device_facts(Device device) {
  DeviceFacts f;
  const int d = device.ordinal;
  KVSERVE_TRY(cuda_status(cudaDeviceGetAttribute(&f.sm_count, cudaDevAttrMultiProcessorCount, d), "device",
                          "multiprocessor count"));
  KVSERVE_TRY(cuda_status(cudaDeviceGetAttribute(&f.major, cudaDevAttrComputeCapabilityMajor, d), "device",
                          "compute capability"));
  KVSERVE_TRY(cuda_status(cudaDeviceGetAttribute(&f.minor, cudaDevAttrComputeCapabilityMinor, d), "device",
                          "compute capability"));
  f.arch = "sm_" + std::to_string(f.major * 10 + f.minor);
  return f;
}

}  // namespace kvserve::detail::cuda
