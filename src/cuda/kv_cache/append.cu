// The append kernels: every row of the three append families of
// src/cuda/registry/kernel_rows.hpp, one kernel template (append_kernels.cuh).
// Each is a few dozen instructions, so one file.
#include "cuda/kv_cache/append_kernels.cuh"

namespace kvserve::detail::cuda {

template <KernelRow R>
struct AppendRow {
  static constexpr AppendLaunch launch = &launch_append<R.q, R.kv>;
};
RowLaunchers<AppendLaunch> paged_append_launchers() {
  return instantiate_shard<AppendLaunch, Family::paged_append, every_row, AppendRow>();
}
RowLaunchers<AppendLaunch> mla_append_launchers() {
  return instantiate_shard<AppendLaunch, Family::mla_append, every_row, AppendRow>();
}
RowLaunchers<AppendLaunch> cache_append_launchers() {
  return instantiate_shard<AppendLaunch, Family::cache_append, every_row, AppendRow>();
}

}  // namespace kvserve::detail::cuda
