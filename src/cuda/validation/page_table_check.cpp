// validate_page_table for a table on a CUDA device. Cost: one small kernel
// launch and one stream synchronisation (plus a stream-ordered 8-byte
// allocation from the device's default memory pool, so nothing is kept
// between calls and no caller buffer is needed). Only when the table is bad:
// a second synchronisation and a copy of the table up to the bad entry, on
// which the host check builds the message, so the two checks' messages
// cannot drift apart.
#include <string>
#include <vector>

#include "core/paged_kv_rules.hpp"
#include "cuda/common/runtime.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/validation/page_table_check.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

// Copies `count` int32 values from the device; a no-op for count 0.
Status copy_prefix(std::string_view op, std::vector<std::int32_t>* host, const TensorView& t, std::int64_t count,
                   cudaStream_t stream) {
  host->resize(static_cast<std::size_t>(count));
  if (count == 0) return Status::ok();
  return cuda_status(cudaMemcpyAsync(host->data(), t.data, sizeof(std::int32_t) * count, cudaMemcpyDeviceToHost,
                                     stream),
                     op, "copying the page table back");
}

// The host check over the part of the table that reaches the bad entry `key`:
// the prefix ends where the device check found it, so the host check finds
// the same entry and words it.
Status host_message(std::string_view op, std::string_view name, const PagedKvDesc& desc, const PagedKv& kv,
                    std::int64_t batch, unsigned long long key, cudaStream_t stream) {
  const PageTableStage stage = stage_of(key);
  // indptr: the entries up to the bad one; the indices count: all of indptr;
  // a request's entry: the requests up to it.
  const std::int64_t rows = stage == PageTableStage::indptr          ? request_of(key)
                            : stage == PageTableStage::indices_count ? batch
                                                                     : request_of(key) + 1;
  std::vector<std::int32_t> indptr, indices, last_page_len;
  KVSERVE_TRY(copy_prefix(op, &indptr, kv.indptr, rows + 1, stream));
  KVSERVE_TRY(cuda_status(cudaStreamSynchronize(stream), op, "copying the page table back"));
  if (stage == PageTableStage::request) {
    KVSERVE_TRY(copy_prefix(op, &indices, kv.indices, indptr[rows], stream));
    KVSERVE_TRY(copy_prefix(op, &last_page_len, kv.last_page_len, rows, stream));
    KVSERVE_TRY(cuda_status(cudaStreamSynchronize(stream), op, "copying the page table back"));
  }
  const Status s = check_page_table_host(op, name, desc, indptr.data(), rows, indices.data(), kv.indices.shape[0],
                                         last_page_len.data());
  if (!s) return s;
  return Status::internal(std::string(op) + ": the device check found a bad entry the host check did not (was the "
                          "table written while it was checked?)");
}

}  // namespace
}  // namespace cuda

Status cuda_validate_page_table(std::string_view op, std::string_view name, const PagedKvDesc& desc,
                                const PagedKv& kv, std::int64_t batch, Stream stream) {
  using namespace cuda;
  DeviceScope scope(kv.indptr.device);
  KVSERVE_TRY(cuda_status(scope.error(), op, "selecting " + kv.indptr.device.to_string()));
  const cudaStream_t s = stream_of(stream);
  void* first_bad = nullptr;
  KVSERVE_TRY(cuda_status(cudaMallocAsync(&first_bad, sizeof(unsigned long long), s), op, "allocating the result"));
  PageTableCheckParams prm;
  prm.indptr = kv.indptr.ptr<const std::int32_t>();
  prm.indices = kv.indices.ptr<const std::int32_t>();
  prm.last_page_len = kv.last_page_len.ptr<const std::int32_t>();
  prm.batch = batch, prm.num_indices = kv.indices.shape[0], prm.num_pages = desc.num_pages;
  prm.page_size = desc.page_size;
  prm.first_bad = static_cast<unsigned long long*>(first_bad);
  unsigned long long key = kNoBadEntry;
  // 0xff bytes are kNoBadEntry.
  Status launched = cuda_status(cudaMemsetAsync(first_bad, 0xff, sizeof(key), s), op, "clearing the result");
  if (launched) launched = cuda_status(static_cast<cudaError_t>(launch_page_table_check(prm, s)), op, "kernel launch");
  if (launched)
    launched = cuda_status(cudaMemcpyAsync(&key, first_bad, sizeof(key), cudaMemcpyDeviceToHost, s), op,
                           "reading the result");
  const Status freed = cuda_status(cudaFreeAsync(first_bad, s), op, "freeing the result");
  KVSERVE_TRY(launched);
  KVSERVE_TRY(freed);
  KVSERVE_TRY(cuda_status(cudaStreamSynchronize(s), op, "waiting for the check"));
  if (key == kNoBadEntry) return Status::ok();
  return host_message(op, name, desc, kv, batch, key, s);
}

}  // namespace kvserve::detail
