// Pinned host staging for prepare(): a schedule is built in pinned memory on
// the host and copied into the caller's workspace with cudaMemcpyAsync, so
// prepare() neither allocates nor synchronises the device. Two buffers
// alternate; each remembers (by an event) the copy that last read it, and the
// host waits for that copy alone before writing the buffer again.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <memory>

#include "kvserve/core.hpp"

namespace kvserve::detail::cuda {

class PinnedStaging {
 public:
  // Allocates two pinned buffers of `bytes` on behalf of `device`.
  static Result<std::unique_ptr<PinnedStaging>> create(Device device, std::size_t bytes);
  ~PinnedStaging();
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  // The buffer to build the next schedule in, once the copy that last read
  // it has completed (a wait on that copy's event, never on the device).
  Result<void*> acquire(std::string_view op);
  // Copies the first `bytes` of the acquired buffer to `dst` on `stream` and
  // hands the buffer over to that copy until it completes.
  Status copy_to_device(std::string_view op, void* dst, std::size_t bytes, cudaStream_t stream);

 private:
  PinnedStaging(Device device, std::size_t bytes) : device_(device), bytes_(bytes) {}
  Device device_;
  std::size_t bytes_ = 0;
  std::array<void*, 2> buffers_{};
  std::array<cudaEvent_t, 2> copied_{};
  int current_ = 0;
};

}  // namespace kvserve::detail::cuda
