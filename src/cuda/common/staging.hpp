// Pinned host staging for prepare(): a schedule is built in pinned memory on
// the host and copied into the caller's workspace with cudaMemcpyAsync, so
// prepare() neither allocates nor synchronises the device. Two buffers
// alternate; each remembers (by an event) the copy that last read it, and the
// host waits for that copy alone before writing the buffer again.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

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

// A plan's create(): the staging its prepare() builds schedules in, sized by
// the selection (every scheduled plan keeps `staging` and
// `sizing.staging_bytes` in its Selected).
template <class Selected>
Status create_staging(Selected& s, Device device) {
  auto staging = PinnedStaging::create(device, s.sizing.staging_bytes);
  if (!staging) return staging.status();
  s.staging = std::move(*staging);
  return Status::ok();
}

// A plan's prepare(), with `device` current: `build` writes the schedule into
// the next staging buffer and returns the bytes written (or why it could
// not); they are copied to the workspace's start on `stream`, and
// [clear_offset, clear_offset + clear_bytes) of the workspace (split
// counters, which the kernels leave at zero: clearing them as well recovers
// from a run that never finished) is zeroed on the same stream.
Status stage_schedule(std::string_view op, Device device, PinnedStaging& staging, Workspace ws, Stream stream,
                      const std::function<Result<std::size_t>(void* staging)>& build, std::size_t clear_offset = 0,
                      std::size_t clear_bytes = 0);

}  // namespace kvserve::detail::cuda
