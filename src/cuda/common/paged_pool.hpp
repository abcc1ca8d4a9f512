// One K/V pool pair as every kernel addresses it, in host and device code:
// the paged-decode and multi-query kernels read it, the append kernel writes
// it, and the plans fill it from a PagedKvDesc once (paged_pool in
// runtime.hpp). Element strides of (page, slot, head) are where NHD and HND
// differ; offsets are 64-bit, as a pool may hold more than 2^31 elements.
// Contiguous K/V is a pool of one page (page_size 1, slot = row).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define KVSERVE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define KVSERVE_HOST_DEVICE inline
#endif

namespace kvserve::detail::cuda {

struct PagedPool {
  void* k = nullptr;  // the K pool; readers take it as const
  void* v = nullptr;
  std::int64_t k_stride_page = 0, k_stride_slot = 0, k_stride_head = 0;
  std::int64_t v_stride_page = 0, v_stride_slot = 0, v_stride_head = 0;
  int page_size = 1;
  int page_shift = -1;  // log2(page_size) when a power of two (the common 16, 32, 64), else -1

  // Host side: page_size and its shift together.
  void set_page_size(int size) {
    page_size = size;
    page_shift = size > 0 && (size & (size - 1)) == 0 ? __builtin_ctz(static_cast<unsigned>(size)) : -1;
  }

  // Which page of a request holds its token `pos`, and the slot in it:
  // a shift and a mask for a power-of-two page size, a division otherwise.
  // In the position's own type: the attention kernels' 32-bit positions
  // divide faster than the append kernel's 64-bit ones.
  template <class Pos>
  KVSERVE_HOST_DEVICE Pos page_index(Pos pos) const {
    return page_shift >= 0 ? pos >> page_shift : pos / page_size;
  }
  template <class Pos>
  KVSERVE_HOST_DEVICE Pos slot(Pos pos) const {
    return page_shift >= 0 ? pos & (page_size - 1) : pos % page_size;
  }
  // Element offsets of (page, slot, head) in each pool.
  KVSERVE_HOST_DEVICE std::int64_t k_offset(std::int64_t page, std::int64_t slot, int head) const {
    return page * k_stride_page + slot * k_stride_slot + head * k_stride_head;
  }
  KVSERVE_HOST_DEVICE std::int64_t v_offset(std::int64_t page, std::int64_t slot, int head) const {
    return page * v_stride_page + slot * v_stride_slot + head * v_stride_head;
  }
};

}  // namespace kvserve::detail::cuda
