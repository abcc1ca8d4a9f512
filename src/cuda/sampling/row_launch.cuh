// Launch glue of the row kernels: how a plan finds, once, the cluster shape
// and resident slices of its kernel on its device (describe_rows), how a run
// launches one cluster per row (launch_rows), and what a block reads off the
// launch: its row, its slice, the row's parameters and random stream.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/sampling_math.hpp"
#include "cuda/sampling/row_cluster.cuh"
#include "cuda/sampling/row_views.cuh"
#include "cuda/sampling/sampling_params.hpp"

namespace kvserve::detail::cuda {

// This block's slice of the row `view` reads, under the launch's geometry;
// resident slices live in the kernel's dynamic shared memory.
template <class View>
__device__ Slice<View> slice_of(const View& view, const RowGeometry& g, const RowCluster& cl) {
  Slice<View> s{view};
  s.begin = cl.rank * g.slice;
  const int left = g.vocab - s.begin;
  s.count = left < 0 ? 0 : (left < g.slice ? left : g.slice);
  s.resident = g.resident;
  return s;
}

// The row this block's cluster walks: a cluster is `size` consecutive blocks.
__device__ __forceinline__ int row_of_cluster(const RowCluster& cl) { return static_cast<int>(blockIdx.x) / cl.size; }

// The random block `draw` of row b.
__device__ __forceinline__ PhiloxBlock row_random_block(const RandomParams& r, int b, std::uint32_t draw) {
  if (r.seeds == nullptr) return random_block(r.seed, r.offset, static_cast<std::uint32_t>(b), draw);
  return random_block(static_cast<std::uint32_t>(r.seeds[b]), static_cast<std::uint32_t>(r.offsets[b]), 0, draw);
}

// Row b's value of a per-row parameter.
template <class T>
__device__ __forceinline__ T row_param(const RowParam<T>& p, int b) {
  return p.rows ? p.rows[b] : p.scalar;
}

// Finds, once per plan, how `kernel` walks rows of `vocab` tokens on the
// current device: clusters where the architecture has them (sm_90 and later),
// slices resident in shared memory when `may_reside` and they fit beside the
// kernel's static shared memory, and how many clusters of kMaxCluster blocks
// the GPU co-schedules. Also sets the kernel's attributes (all of the SM's
// unified memory as shared memory, so two blocks fit; dynamic shared memory
// up to the device's limit, so plans of any vocabulary share them). Returns
// the first cudaError_t as an int.
template <class Params>
int describe_rows(void (*kernel)(Params, RowGeometry), int vocab, bool may_reside, RowLaunch* out) {
  int device = 0, major = 0, optin = 0;
  cudaFuncAttributes attributes{};
  for (const cudaError_t e : {cudaGetDevice(&device),
                              cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
                              cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
                              cudaDeviceGetAttribute(&out->sms, cudaDevAttrMultiProcessorCount, device),
                              cudaFuncGetAttributes(&attributes, kernel),
                              cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                                   cudaSharedmemCarveoutMaxShared),
                              cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   optin - static_cast<int>(attributes.sharedSizeBytes))})
    if (e != cudaSuccess) return static_cast<int>(e);
  const auto shape = [&](int size) {
    RowGeometry g;
    g.vocab = vocab;
    g.cluster = size;
    g.slice = (vocab + size - 1) / size;
    g.resident = may_reside && sizeof(float) * static_cast<std::size_t>(g.slice) + attributes.sharedSizeBytes <=
                                   static_cast<std::size_t>(optin);
    return g;
  };
  out->portable = shape(major >= 9 ? row_cluster_size(vocab) : 1);
  out->wide = RowGeometry{};
  out->wide.cluster = 0;
  if (out->portable.cluster != kPortableCluster) return static_cast<int>(cudaSuccess);
  const RowGeometry wide = shape(kMaxCluster);
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim = {static_cast<unsigned>(kMaxCluster), 1, 1};
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(kMaxCluster);
  config.blockDim = dim3(kRowThreads);
  config.dynamicSmemBytes = wide.resident ? sizeof(float) * static_cast<std::size_t>(wide.slice) : 0;
  config.attrs = &cluster;
  config.numAttrs = 1;
  int clusters = 0;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess &&
      cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) == cudaSuccess && clusters > 0) {
    out->wide = wide;
    out->wide_max_clusters = clusters;
  }
  cudaGetLastError();  // the wide shape may be refused: clear its error, the portable one serves
  return static_cast<int>(cudaSuccess);
}

// Launches kernel(params, geometry) with one cluster per row for `batch`
// rows: clusters of kMaxCluster blocks when the batch is too small to fill the
// GPU with the portable size and the GPU co-schedules them all, else the
// portable size. No device query: `launch` was found when the plan was made.
template <class Params>
int launch_rows(void (*kernel)(Params, RowGeometry), const RowLaunch& launch, const Params& params, int batch,
                void* stream) {
  const bool wide = launch.wide.cluster > 0 && batch * kMaxCluster <= 2 * launch.sms &&
                    launch.wide_max_clusters >= batch;
  const RowGeometry& g = wide ? launch.wide : launch.portable;
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim = {static_cast<unsigned>(g.cluster), 1, 1};
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(batch) * static_cast<unsigned>(g.cluster));
  config.blockDim = dim3(kRowThreads);
  config.dynamicSmemBytes = g.resident ? sizeof(float) * static_cast<std::size_t>(g.slice) : 0;
  config.stream = static_cast<cudaStream_t>(stream);
  config.attrs = &cluster;
  config.numAttrs = g.cluster > 1 ? 1 : 0;
  return static_cast<int>(cudaLaunchKernelEx(&config, kernel, params, g));
}

}  // namespace kvserve::detail::cuda
