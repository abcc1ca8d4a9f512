// PagedKvAppend kernels: every (row dtype, pool dtype) row of
// src/cuda/registry/kernel_rows.hpp. Each is a few dozen instructions, so one file.
#include "cuda/kv_cache/append_kernels.cuh"

namespace kvserve::detail::cuda {

template <KernelRow R>
struct AppendRow {
  static constexpr AppendLaunch launch = &launch_append<R.q, R.kv>;
};
RowLaunchers<AppendLaunch> append_launchers() {
  return instantiate_shard<AppendLaunch, Family::paged_append, every_row, AppendRow>();
}

}  // namespace kvserve::detail::cuda
