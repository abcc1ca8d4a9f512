// The backends' kernels of every op (core/op_list.hpp): each a specialisation
// of cpu_kernel<Op> / cuda_kernel<Op> (core/backends.hpp), defined in the
// op's family file under src/cpu/ or src/cuda/. An op without a CUDA kernel
// takes the primary cuda_kernel<Op>, which answers Unsupported.
#pragma once

#include "core/backends.hpp"
#include "core/op_list.hpp"
#include "kvserve/attention.hpp"
#include "kvserve/gdn.hpp"
#include "kvserve/kv_cache.hpp"
#include "kvserve/merge.hpp"
#include "kvserve/mla.hpp"
#include "kvserve/norm.hpp"
#include "kvserve/penalty.hpp"
#include "kvserve/sampling.hpp"
#include "kvserve/speculative.hpp"

namespace kvserve::detail {

#define KVSERVE_DECLARE_CPU_KERNEL(Op) template <> Result<Kernel<Op>> cpu_kernel<Op>(const Op::Desc&);
#if KVSERVE_WITH_CUDA
#define KVSERVE_DECLARE_CUDA_KERNEL_cuda(Op) \
  template <>                                \
  Result<Kernel<Op>> cuda_kernel<Op>(const Op::Desc&, Device);
#else
#define KVSERVE_DECLARE_CUDA_KERNEL_cuda(Op)
#endif
#define KVSERVE_DECLARE_CUDA_KERNEL_cpu_only(Op)
#define KVSERVE_DECLARE_KERNELS(Op, backends) \
  KVSERVE_DECLARE_CPU_KERNEL(Op)              \
  KVSERVE_DECLARE_CUDA_KERNEL_##backends(Op)

KVSERVE_FOR_EACH_OP(KVSERVE_DECLARE_KERNELS)

#undef KVSERVE_DECLARE_KERNELS
#undef KVSERVE_DECLARE_CUDA_KERNEL_cpu_only
#undef KVSERVE_DECLARE_CUDA_KERNEL_cuda
#undef KVSERVE_DECLARE_CPU_KERNEL

}  // namespace kvserve::detail
