// The device page-table check behind validate_page_table: every bad entry
// proposes its order key with atomicMin, so the smallest key, the entry the
// host check would report first, wins whatever order the threads run in.
#include <cuda_runtime.h>

#include "cuda/validation/page_table_check.hpp"

namespace kvserve::detail::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;  // grid-stride beyond this: the check is a small fraction of a step

__device__ __forceinline__ void propose(unsigned long long* first_bad, unsigned long long key) {
  atomicMin(first_bad, key);
}

// One warp per request (grid-stride): its indptr step, its page ids, its
// last_page_len. Thread 0 also checks indptr[0] and indptr[B] against the
// indices tensor.
__global__ void __launch_bounds__(kThreads) page_table_check_kernel(const __grid_constant__ PageTableCheckParams p) {
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (kThreads / 32);
  const int lane = threadIdx.x % 32;
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    if (p.indptr[0] != 0) propose(p.first_bad, page_table_key(PageTableStage::indptr, 0, 0));
    if (p.indptr[p.batch] > p.num_indices) propose(p.first_bad, page_table_key(PageTableStage::indices_count, 0, 0));
  }
  for (std::int64_t r = blockIdx.x * (kThreads / 32) + threadIdx.x / 32; r < p.batch; r += warps) {
    const std::int32_t begin = p.indptr[r], end = p.indptr[r + 1];
    if (end < begin) {
      if (lane == 0) propose(p.first_bad, page_table_key(PageTableStage::indptr, r + 1, 0));
      continue;
    }
    // A bad indptr elsewhere outranks these entries; clipping only keeps the
    // reads inside the indices tensor meanwhile.
    const std::int64_t lo = begin < 0 ? 0 : begin;
    const std::int64_t hi = end < p.num_indices ? end : p.num_indices;
    for (std::int64_t i = lo + lane; i < hi; i += 32) {
      const std::int32_t page = p.indices[i];
      if (page < 0 || page >= p.num_pages)
        propose(p.first_bad, page_table_key(PageTableStage::request, r, i - begin));
    }
    const std::int32_t last = p.last_page_len[r];
    if (lane == 0 && end > begin && (last < 1 || last > p.page_size))
      propose(p.first_bad, page_table_key(PageTableStage::request, r, kLastPageLenPosition));
  }
}

}  // namespace

int launch_page_table_check(const PageTableCheckParams& p, void* stream) {
  const std::int64_t warps_needed = p.batch > 0 ? p.batch : 1;
  const std::int64_t blocks = (warps_needed + kThreads / 32 - 1) / (kThreads / 32);
  page_table_check_kernel<<<static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks), kThreads, 0,
                            static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace kvserve::detail::cuda
