// A multi-query row's launchers, instantiated by multi_query_<dtype>.cu:
// the mma.sync kernel, the sm_90a wgmma kernel and the slot merge.
#pragma once

#include "cuda/multi_query/multi_query_kernel.cuh"
#include "cuda/multi_query/multi_query_sm90_kernel.cuh"
#include "cuda/registry/instantiate.hpp"

namespace kvserve::detail::cuda {

template <KernelRow R>
struct MultiQueryRow {
  static constexpr MultiQueryLaunch launch{&launch_multi_query<R.q, R.head_dim>,
                                           &launch_multi_query_sm90<R.q, R.head_dim>, &launch_slot_merge<R.q>};
};

}  // namespace kvserve::detail::cuda
