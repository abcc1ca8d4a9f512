// The thread-block cluster that walks one row of the sampling family's row
// kernels: its barriers, its blocks' shared memory (distributed shared
// memory), sums over its blocks, and which block owns which bucket of a
// radix level. Blocks exchange their partial results only through these.
#pragma once

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "cuda/sampling/sampling_params.hpp"

namespace kvserve::detail::cuda {

namespace cg = cooperative_groups;

// a + b: cluster_sum's default `combine`, and the scans' operator.
struct Plus {
  template <class T>
  __device__ T operator()(const T& a, const T& b) const {
    return a + b;
  }
};

// The cluster working on one row and where this block sits in it. Built for
// an architecture without clusters (sm_80), every row is a cluster of one.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define KVSERVE_ROW_CLUSTERS 1
#else
#define KVSERVE_ROW_CLUSTERS 0
#endif
struct RowCluster {
  int size, rank;
  int log2_size;  // size is a power of two
  // `local`'s counterpart in block `block` of the cluster (distributed shared memory).
  template <class T>
  __device__ T* at(T* local, int block) const {
#if KVSERVE_ROW_CLUSTERS
    return cg::this_cluster().map_shared_rank(local, block);
#else
    return local;
#endif
  }
  // Barrier over every thread of the cluster; orders shared-memory accesses across its blocks.
  __device__ void sync() const {
#if KVSERVE_ROW_CLUSTERS
    cg::this_cluster().sync();
#else
    __syncthreads();
#endif
  }
  // The same barrier in two halves, so that work between them hides its latency.
  __device__ void arrive() const {
#if KVSERVE_ROW_CLUSTERS
    asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
#endif
  }
  __device__ void wait() const {
#if KVSERVE_ROW_CLUSTERS
    asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#else
    __syncthreads();
#endif
  }
};

__device__ __forceinline__ RowCluster this_row_cluster() {
#if KVSERVE_ROW_CLUSTERS
  const cg::cluster_group g = cg::this_cluster();
  const auto size = static_cast<int>(g.num_blocks());
  return {size, static_cast<int>(g.block_rank()), 31 - __clz(size)};
#else
  return {1, 0, 0};
#endif
}

// get(0) + ... + get(size - 1) over the cluster's blocks (any `combine`);
// unrolled, so the remote loads can be issued together.
template <class T, class Get, class Combine = Plus>
__device__ __forceinline__ T cluster_sum(const RowCluster& cl, T zero, Get&& get, Combine combine = {}) {
  T sum = zero;
#pragma unroll
  for (int q = 0; q < kMaxCluster; ++q)
    if (q < cl.size) sum = combine(sum, get(q));
  return sum;
}

// The block owning bucket b of a level with `buckets` buckets: each owns
// buckets / cluster-size consecutive ones (both powers of two: a shift, not
// a division, on every token a level pass adds).
__device__ __forceinline__ int owner_of(int b, int buckets, const RowCluster& cl) {
  return b >> (31 - __clz(buckets) - cl.log2_size);
}

}  // namespace kvserve::detail::cuda
