#include "cuda/common/staging.hpp"

#include "cuda/common/runtime.hpp"

namespace kvserve::detail::cuda {

Result<std::unique_ptr<PinnedStaging>> PinnedStaging::create(Device device, std::size_t bytes) {
  DeviceScope scope(device);
  KVSERVE_TRY(cuda_status(scope.error(), "plan", "selecting " + device.to_string()));
  std::unique_ptr<PinnedStaging> s(new PinnedStaging(device, bytes));
  for (int i = 0; i < 2; ++i) {
    KVSERVE_TRY(cuda_status(cudaHostAlloc(&s->buffers_[i], bytes ? bytes : 1, cudaHostAllocPortable), "plan",
                            "cudaHostAlloc of the schedule staging"));
    KVSERVE_TRY(cuda_status(cudaEventCreateWithFlags(&s->copied_[i], cudaEventDisableTiming), "plan",
                            "cudaEventCreate"));
  }
  return s;
}

PinnedStaging::~PinnedStaging() {
  DeviceScope scope(device_);
  for (int i = 0; i < 2; ++i) {
    if (copied_[i]) {
      cudaEventSynchronize(copied_[i]);  // a copy may still read the buffer
      cudaEventDestroy(copied_[i]);
    }
    if (buffers_[i]) cudaFreeHost(buffers_[i]);
  }
}

Result<void*> PinnedStaging::acquire(std::string_view op) {
  current_ ^= 1;
  KVSERVE_TRY(cuda_status(cudaEventSynchronize(copied_[current_]), op, "waiting for an earlier schedule copy"));
  return buffers_[current_];
}

Status PinnedStaging::copy_to_device(std::string_view op, void* dst, std::size_t bytes, cudaStream_t stream) {
  KVSERVE_TRY(cuda_status(cudaMemcpyAsync(dst, buffers_[current_], bytes, cudaMemcpyHostToDevice, stream), op,
                          "copying the schedule into the workspace"));
  return cuda_status(cudaEventRecord(copied_[current_], stream), op, "cudaEventRecord");
}

Status stage_schedule(std::string_view op, Device device, PinnedStaging& staging, Workspace ws, Stream stream,
                      const std::function<Result<std::size_t>(void* staging)>& build, std::size_t clear_offset,
                      std::size_t clear_bytes) {
  return on_device(device, op, [&]() -> Status {
    auto buffer = staging.acquire(op);
    if (!buffer) return buffer.status();
    auto bytes = build(*buffer);
    if (!bytes) return bytes.status();
    KVSERVE_TRY(staging.copy_to_device(op, ws.data, *bytes, stream_of(stream)));
    if (clear_bytes == 0) return Status::ok();
    return cuda_status(cudaMemsetAsync(static_cast<char*>(ws.data) + clear_offset, 0, clear_bytes, stream_of(stream)),
                       op, "clearing the split counters");
  });
}

}  // namespace kvserve::detail::cuda
