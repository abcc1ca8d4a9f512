// What the CUDA backend offers besides the ops' kernels (host-only
// declarations; no CUDA headers). The ops with a CUDA kernel are those the op
// list marks `cuda` (core/op_list.hpp, declared in core/backend_kernels.hpp);
// their configurations are the kernel rows (src/cuda/registry/kernel_rows.hpp),
// each op's plan made by the one adapter (src/cuda/common/cuda_plan.hpp).
#pragma once

#include <vector>

#include "core/backend_kernels.hpp"

namespace kvserve::detail {

// validate_page_table for a table on a CUDA device (src/cuda/validation/
// page_table_check.cpp): one kernel launch and one stream synchronisation; the
// message is the host check's, on a copy of the table up to the bad entry.
Status cuda_validate_page_table(std::string_view op, std::string_view name, const PagedKvDesc& desc,
                                const PagedKv& kv, std::int64_t batch, Stream stream);

// Every kernel row, per op, for `kvserve list` and the docs (registry.cpp).
std::vector<CompiledKernel> cuda_compiled_kernels();

}  // namespace kvserve::detail
