// Instantiation from the rows: a family's shard .cu file instantiates the
// kernel of every row it picks and hands the launchers to the family's
// LaunchTable, so a row added to kKernelRows is compiled without another
// edit. Included by .cu files only (Make<row> names kernel templates).
#pragma once

#include <array>
#include <utility>

#include "cuda/registry/registry.hpp"

namespace kvserve::detail::cuda {

// Shard pickers: the rows a .cu file compiles.
template <DType D>
constexpr bool kv_is(const KernelRow& r) {
  return r.kv == D;
}
template <DType D>
constexpr bool q_is(const KernelRow& r) {
  return r.q == D;
}
constexpr bool every_row(const KernelRow&) { return true; }

// Indices of the rows of family F that InShard picks.
template <Family F, bool (*InShard)(const KernelRow&)>
constexpr auto shard_rows() {
  constexpr int n = [] {
    int count = 0;
    for (const auto& r : kKernelRows) count += r.family == F && InShard(r);
    return count;
  }();
  std::array<int, n> rows{};
  for (int i = 0, k = 0; i < kKernelRowCount; ++i)
    if (kKernelRows[i].family == F && InShard(kKernelRows[i])) rows[k++] = i;
  return rows;
}

// The launchers of those rows: Make<row>::launch names (and so instantiates
// here) the row's kernel.
template <class Launch, Family F, bool (*InShard)(const KernelRow&), template <KernelRow> class Make>
RowLaunchers<Launch> instantiate_shard() {
  static constexpr auto rows = shard_rows<F, InShard>();
  static constexpr auto launchers = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<RowLauncher<Launch>, sizeof...(I)>{RowLauncher<Launch>{rows[I], Make<kKernelRows[rows[I]]>::launch}...};
  }(std::make_index_sequence<rows.size()>{});
  return launchers;
}

}  // namespace kvserve::detail::cuda
