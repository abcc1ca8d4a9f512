// Host-side CUDA plumbing shared by every CUDA plan: CUDA errors as Status
// values, a scope that makes the plan's device current and restores the
// caller's, and the device facts kernels are sized from.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <string_view>

#include "cuda/common/paged_pool.hpp"
#include "kvserve/attention.hpp"
#include "kvserve/core.hpp"

namespace kvserve::detail::cuda {

// ok() for cudaSuccess; otherwise CudaError "<op>: <what>: <CUDA's error string>".
Status cuda_status(cudaError_t e, std::string_view op, std::string_view what);

// Makes `device` current for the scope and restores the caller's device at
// its end, so a plan for cuda:1 never leaves cuda:1 current behind it.
class DeviceScope {
 public:
  explicit DeviceScope(Device device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  // The error from switching, if any (checked by the caller before launching).
  cudaError_t error() const { return error_; }

 private:
  int previous_ = -1;
  cudaError_t error_ = cudaSuccess;
};

// Runs `step` (returning Status) with `device` current: how every CUDA
// plan's prepare() and run() reach their device.
template <class Step>
Status on_device(Device device, std::string_view op, Step&& step) {
  DeviceScope scope(device);
  if (Status s = cuda_status(scope.error(), op, "selecting " + device.to_string()); !s) return s;
  return step();
}

// The Status of a kernel launcher's result (a cudaError_t as int, so that
// launcher declarations need no CUDA headers).
inline Status launched(std::string_view op, int error) {
  return cuda_status(static_cast<cudaError_t>(error), op, "kernel launch");
}

// Runs `launch` (a launcher call) with `device` current.
template <class Launch>
Status launch_on(Device device, std::string_view op, Launch&& launch) {
  return on_device(device, op, [&] { return launched(op, launch()); });
}

struct DeviceFacts {
  int sm_count = 0;
  int major = 0, minor = 0;
  std::string arch;  // "sm_90", compute capability of the device
};
Result<DeviceFacts> device_facts(Device device);

inline cudaStream_t stream_of(Stream s) { return static_cast<cudaStream_t>(s.handle); }

// The attention kernels take logits in base 2: without a soft-cap q is
// scaled by sm_scale * log2 e (sm_scale defaults to 1 / sqrt(head_dim));
// with one, tanh sees s / cap and the cap carries the log2 e.
struct LogitScales {
  float q_scale, cap_log2;
};
LogitScales logit_scales(const AttentionParams& attn, int head_dim);

// The pools of a paged cache as the kernels address them. NHD pools are
// [page, slot, head, d], HND pools [page, head, slot, d].
PagedPool paged_pool(const PagedKvDesc& kv, const TensorView& k_pages, const TensorView& v_pages);

// Whether a device address is aligned for `bytes`-wide accesses.
inline bool aligned(const void* p, std::size_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

// The CUDA kernels move rows 16 bytes at a time: `t`'s data and its first
// `strided_dims` strides must be multiples of 16 bytes (a stride of 0 is),
// else InvalidArgument naming `op` and `name`. An absent (optional) view passes.
Status check_16_byte_rows(std::string_view op, std::string_view name, const TensorView& t, int strided_dims);

}  // namespace kvserve::detail::cuda
