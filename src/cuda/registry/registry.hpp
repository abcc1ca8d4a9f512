// Selection and listing from the kernel rows (kernel_rows.hpp), and the
// per-family launch tables the rows' instantiations fill. Host-only C++.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cuda/registry/kernel_rows.hpp"
#include "kvserve/core.hpp"

namespace kvserve::detail::cuda {

// The configuration a descriptor asks its family for.
struct RowKey {
  DType q, kv;
  int head_dim;
};

// The one lookup a plan makes (in create, or supports): the index in
// kKernelRows of the row of `family` that serves `key`, or Unsupported
// "<op>: no CUDA kernel for <key> (built: <every row of the family>)".
Result<int> find_row(std::string_view op, Family family, RowKey key);

// How many lookups find_row has answered in this process (a test counts
// them around a plan's create, prepare and run).
std::uint64_t row_lookups();

// Every Unsupported of the CUDA backend reads
// "<op>: no CUDA kernel for <what> (built: <built>)".
Status no_kernel(std::string_view op, std::string_view what, std::string_view built);

// A row's configuration: "dtype=bf16 d=128", "q=bf16 kv=fp8_e4m3 d=128",
// "dtype=f32 d a multiple of 4".
std::string row_text(const KernelRow& row);

// A family's launcher (its kernel's entry points, a struct of function
// pointers or one pointer) for one row, as the row's instantiation in the
// family's shard .cu file made it (registry/instantiate.hpp).
template <class Launch>
struct RowLauncher {
  int row;
  Launch launch;
};
template <class Launch>
using RowLaunchers = std::span<const RowLauncher<Launch>>;

// Records that a shard instantiated `row` (the LaunchTable does it).
void mark_launchable(int row);
// The rows no shard instantiated: empty in a consistent build (a test).
std::vector<int> rows_without_launcher();

// A family's launchers by row, gathered from its shards; one per family,
// at namespace scope in the family's plan file.
template <class Launch>
class LaunchTable {
 public:
  LaunchTable(std::initializer_list<RowLaunchers<Launch>> shards) {
    for (const auto& shard : shards)
      for (const auto& e : shard) {
        by_row_[e.row] = &e.launch;
        mark_launchable(e.row);
      }
  }
  // `row` comes from find_row for this family, so it is present.
  const Launch& operator[](int row) const { return *by_row_[row]; }

 private:
  std::array<const Launch*, kKernelRowCount> by_row_{};
};

}  // namespace kvserve::detail::cuda
