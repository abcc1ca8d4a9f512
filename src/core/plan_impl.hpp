// The one implementation of Plan<Op>, shared by every op. A family's rules
// file includes this and instantiates `template class Plan<TheOp>;`.
#pragma once

#include <string>

#include "core/backend_kernels.hpp"  // every op's backend kernels
#if KVSERVE_WITH_CUDA
#include "cuda/cuda_kernels.hpp"  // the device-side page-table check
#endif
#include "core/check.hpp"
#include "core/plan_state.hpp"

namespace kvserve {

namespace detail {
// Selection is the device's backend's (the CPU kernel, or the CUDA kernel
// table) unless an op specialises it.
template <class Op>
Result<Kernel<Op>> OpRules<Op>::select(const typename Op::Desc& desc, Device device) {
  return select_backend<Op>(desc, device);
}
}  // namespace detail

template <class Op>
Plan<Op>::Plan(std::unique_ptr<detail::PlanState<Op>> state) : state_(std::move(state)) {}
template <class Op>
Plan<Op>::Plan(Plan&&) noexcept = default;
template <class Op>
Plan<Op>& Plan<Op>::operator=(Plan&&) noexcept = default;
template <class Op>
Plan<Op>::~Plan() = default;

template <class Op>
Status Plan<Op>::supports(const Desc& desc, Device device) {
  if (Status s = detail::OpRules<Op>::check_desc(desc); !s) return s;
  if (Status s = detail::check_device(Op::kName, device); !s) return s;
  return detail::OpRules<Op>::select(desc, device).status();
}

template <class Op>
Result<Plan<Op>> Plan<Op>::create(const Desc& desc, Device device) {
  if (Status s = detail::OpRules<Op>::check_desc(desc); !s) return s;
  if (Status s = detail::check_device(Op::kName, device); !s) return s;
  auto kernel = detail::OpRules<Op>::select(desc, device);
  if (!kernel) return kernel.status();
  auto state = std::make_unique<detail::PlanState<Op>>();
  state->desc = desc;
  state->device = device;
  state->kernel = std::move(*kernel);
  if (state->kernel.create_resources) {
    if (Status s = state->kernel.create_resources(*state); !s) return s;
  }
  return Plan(std::move(state));
}

template <class Op>
std::size_t Plan<Op>::workspace_bytes() const {
  return state_->kernel.workspace_bytes;
}

template <class Op>
Status Plan<Op>::prepare(const typename Op::PrepareArgs& host, Workspace workspace, Stream stream)
  requires Op::kHasPrepare
{
  // The constraint already excludes ops without prepare(); the `if constexpr`
  // keeps their (undefined) check_prepare out of the explicit instantiation
  // too, which clang 14 instantiates despite the unsatisfied constraint.
  if constexpr (Op::kHasPrepare) {
    std::int64_t batch = -1;
    if (Status s = detail::OpRules<Op>::check_prepare(state_->desc, host, &batch); !s) return s;
    if (Status s = detail::check_workspace(workspace, state_->kernel.workspace_bytes); !s) return s;
    if (state_->kernel.prepare) {
      if (Status s = state_->kernel.prepare(*state_, host, workspace, stream); !s) return s;
    }
    state_->prepared_batch = batch;
    return Status::ok();
  } else {
    (void)host, (void)workspace, (void)stream;
    return Status::internal(std::string(Op::kName) + ": prepare() on an op without one");
  }
}

template <class Op>
Status Plan<Op>::run(const Args& args, Workspace workspace, Stream stream) const {
  if (Status s = detail::check_workspace(workspace, state_->kernel.workspace_bytes); !s) return s;
  if (Status s = detail::OpRules<Op>::check_args(*state_, args); !s) return s;
  return state_->kernel.run(*state_, args, workspace, stream);
}

template <class Op>
Status Plan<Op>::can_implement(const Args& args) const {
  return detail::OpRules<Op>::check_args(*state_, args);
}

template <class Op>
const typename Plan<Op>::Desc& Plan<Op>::desc() const {
  return state_->desc;
}
template <class Op>
Device Plan<Op>::device() const {
  return state_->device;
}
template <class Op>
const KernelInfo& Plan<Op>::kernel() const {
  return state_->kernel.info;
}

}  // namespace kvserve
