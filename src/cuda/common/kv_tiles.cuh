// K/V tiles through shared memory as both tensor-core attention kernels
// stream them (paged decode on the tensor cores, the multi-query kernel of
// cascade and prefill): Tile keys x HeadDim of K and of V per stage, rows of
// 16-byte chunks swizzled (mma.cuh), copied with cp.async by Threads threads,
// Copies chunks each. A tile's page ids are looked up a tile ahead of its
// copies, into registers, so that no copy waits behind a dependent
// page-table load.
#pragma once

#include "cuda/common/device_types.cuh"
#include "cuda/common/mma.cuh"
#include "cuda/common/paged_pool.hpp"

namespace kvserve::detail::cuda {

template <int Tile, int HeadDim, int Threads>
struct KvTiles {
  static constexpr int kChunks = HeadDim / 8;  // 16-byte chunks of a row (f16 / bf16)
  static constexpr int kTileElems = Tile * HeadDim;
  static constexpr int kCopies = Tile * kChunks / Threads;  // per thread per tile, each of K and V
  static_assert(kCopies * Threads == Tile * kChunks, "copies divide evenly");
  using Pages = int[kCopies];

  // pages[i]: the page holding the key of this thread's copy i of the tile
  // starting at key `tile_begin`, `page_of(key)`, or -1 from `end` on.
  template <class PageOf>
  __device__ __forceinline__ static void fetch(Pages& pages, int tid, int tile_begin, int end, PageOf page_of) {
#pragma unroll
    for (int i = 0; i < kCopies; ++i) {
      const int key = tile_begin + (tid + i * Threads) / kChunks;
      pages[i] = key < end ? page_of(key) : -1;
    }
  }

  // Issues the copies of that tile into `stage` of k_tiles / v_tiles
  // (zero-filling rows whose page is -1); `slot_of(key)` is the key's row
  // within its page. k_head / v_head point at the KV head in each pool.
  template <class T, class SlotOf>
  __device__ __forceinline__ static void issue(T* k_tiles, T* v_tiles, int stage, const T* k_head, const T* v_head,
                                               const PagedPool& pool, const Pages& pages, int tid, int tile_begin,
                                               SlotOf slot_of) {
#pragma unroll
    for (int i = 0; i < kCopies; ++i) {
      const int copy = tid + i * Threads, token = copy / kChunks, chunk = copy % kChunks;
      const bool valid = pages[i] >= 0;
      const std::int64_t pg = valid ? pages[i] : 0, slot = valid ? slot_of(tile_begin + token) : 0;
      const int at = stage * kTileElems + token * HeadDim + swizzle(token, chunk) * 8;
      cp_async16(k_tiles + at, k_head + pg * pool.k_stride_page + slot * pool.k_stride_slot + chunk * 8, valid);
      cp_async16(v_tiles + at, v_head + pg * pool.v_stride_page + slot * pool.v_stride_slot + chunk * 8, valid);
    }
  }
};

}  // namespace kvserve::detail::cuda
