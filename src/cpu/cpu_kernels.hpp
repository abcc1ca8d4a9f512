// The CPU backend serves every op; one declaration per op, defined in the
// family's file under src/cpu/.
#pragma once

#include "kvserve/attention.hpp"

namespace kvserve::detail {

template <> Result<Kernel<BatchPagedDecode>> cpu_kernel<BatchPagedDecode>(const BatchPagedDecodeDesc&);

}  // namespace kvserve::detail
