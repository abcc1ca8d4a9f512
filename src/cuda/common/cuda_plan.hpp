// The one CUDA plan adapter. A family describes each op it serves with a
// traits struct, and CudaPlan<Traits>::kernel makes the op's Kernel<Op>:
// it selects once (Traits::select: the one registry lookup and the sizing
// for the device), keeps the selection in the plan for prepare() and run(),
// reports the identity from it, and sizes the workspace from it.
//
//   struct Traits {
//     using Op = ...;
//     struct Selected {...};  // the row's launcher, the sizing; copied nowhere
//     static Result<Selected> select(const Op::Desc&, const DeviceFacts&);
//     static std::string config(const Op::Desc&, const Selected&);  // KernelInfo::config
//     static Precision precision(const Op::Desc&);
//     static std::size_t workspace_bytes(const Selected&);          // optional, else 0
//     static Status create(Selected&, const Op::Desc&, Device);     // optional: pinned staging
//     static Status prepare(Selected&, const Op::Desc&, Device, const Op::PrepareArgs&,
//                           Workspace, Stream);                     // optional
//     static Status run(const Selected&, const Op::Desc&, Device, const Op::Args&, Workspace, Stream);
//   };
#pragma once

#include <concepts>
#include <memory>
#include <string>
#include <utility>

#include "core/plan_state.hpp"
#include "cuda/common/runtime.hpp"

namespace kvserve::detail::cuda {

template <class Traits>
struct CudaPlan {
  using Op = typename Traits::Op;
  using Selected = typename Traits::Selected;

  static Result<Kernel<Op>> kernel(const typename Op::Desc& desc, Device device) {
    auto facts = device_facts(device);
    if (!facts) return facts.status();
    auto selected = Traits::select(desc, *facts);
    if (!selected) return selected.status();
    auto kept = std::make_shared<Selected>(std::move(*selected));
    Kernel<Op> k;
    k.info.backend = Backend::cuda;
    k.info.arch = facts->arch;
    k.info.op = Op::kName;
    k.info.config = Traits::config(desc, *kept);
    k.info.precision = Traits::precision(desc);
    if constexpr (requires { Traits::workspace_bytes(*kept); }) k.workspace_bytes = Traits::workspace_bytes(*kept);
    k.run = run;
    if constexpr (kHasPrepare) k.prepare = prepare;
    if constexpr (kHasCreate) k.create_resources = create;
    k.selected = std::move(kept);
    return k;
  }

 private:
  static constexpr bool kHasCreate = requires(Selected& s, const typename Op::Desc& d, Device device) {
    { Traits::create(s, d, device) } -> std::same_as<Status>;
  };
  static constexpr bool kHasPrepare = requires(Selected& s, const typename Op::Desc& d, Device device,
                                               const typename Op::PrepareArgs& host, Workspace ws, Stream stream) {
    { Traits::prepare(s, d, device, host, ws, stream) } -> std::same_as<Status>;
  };

  static const Selected& selected_of(const PlanState<Op>& p) {
    return *static_cast<const Selected*>(p.kernel.selected.get());
  }
  static Selected& selected_of(PlanState<Op>& p) { return *static_cast<Selected*>(p.kernel.selected.get()); }
  static Status run(const PlanState<Op>& p, const typename Op::Args& args, Workspace ws, Stream stream) {
    return Traits::run(selected_of(p), p.desc, p.device, args, ws, stream);
  }
  static Status prepare(PlanState<Op>& p, const typename Op::PrepareArgs& host, Workspace ws, Stream stream) {
    return Traits::prepare(selected_of(p), p.desc, p.device, host, ws, stream);
  }
  static Status create(PlanState<Op>& p) {
    return Traits::create(selected_of(p), p.desc, p.device);
  }
};

}  // namespace kvserve::detail::cuda

// Defines the op's CUDA kernel (declared from the op list in
// core/backend_kernels.hpp) as the plan its traits describe; used at
// namespace kvserve::detail scope.
#define KVSERVE_CUDA_KERNEL(Op, Traits)                                                          \
  template <>                                                                                    \
  Result<Kernel<Op>> cuda_kernel<Op>(const typename Op::Desc& desc, Device device) {             \
    return cuda::CudaPlan<cuda::Traits>::kernel(desc, device);                                   \
  }
