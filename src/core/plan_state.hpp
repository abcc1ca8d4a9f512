// What a plan holds, and the per-op rules every plan is built from.
//
// A plan is a descriptor, a device, and the Kernel the backend selected for
// them. Kernels are plain function pointers plus an identity; the backends
// (src/cpu, src/cuda) make them, the rules (src/core/*_rules.cpp) validate
// descriptors and arguments before any kernel sees them.
#pragma once

#include <cstdint>
#include <memory>

#include "kvserve/plan.hpp"

namespace kvserve::detail {

template <class Op>
struct PlanState;

template <class Op>
struct Kernel {
  using Desc = typename Op::Desc;
  using Args = typename Op::Args;
  using PrepareArgs = typename Op::PrepareArgs;

  KernelInfo info;
  std::size_t workspace_bytes = 0;
  // Called only with arguments the rules accepted.
  Status (*run)(const PlanState<Op>&, const Args&, Workspace, Stream) = nullptr;
  // Ops with kHasPrepare; null when the backend has nothing to schedule.
  Status (*prepare)(PlanState<Op>&, const PrepareArgs&, Workspace, Stream) = nullptr;
  // Called once by create() (never by supports()) to set up what the plan
  // keeps beside the selection, e.g. pinned staging; null when nothing.
  Status (*create_resources)(PlanState<Op>&) = nullptr;
  // What the backend selected, kept for prepare() and run() so that they
  // never select again: on CUDA the kernel row's launcher and the sizing
  // (src/cuda/common/cuda_plan.hpp); null on the CPU.
  std::shared_ptr<void> selected;
};

template <class Op>
struct PlanState {
  typename Op::Desc desc;
  Device device;
  Kernel<Op> kernel;
  // Batch size of the last prepare(); -1 before the first. run() insists on it.
  std::int64_t prepared_batch = -1;
};

// Specialised per op (members defined in the family's rules file).
template <class Op>
struct OpRules {
  using Desc = typename Op::Desc;
  // The op's name, which every message of its rules starts with.
  static constexpr const char* op = Op::kName;
  // Every descriptor field, independent of backend.
  static Status check_desc(const Desc& desc);
  // Picks the kernel for a valid descriptor on a device (the one selection
  // create() and supports() share); plan_impl.hpp defines the default.
  static Result<Kernel<Op>> select(const Desc& desc, Device device);
  // Every tensor argument against the descriptor and the plan's device.
  static Status check_args(const PlanState<Op>& plan, const typename Op::Args& args);
  // Host metadata for prepare(); returns the batch size through *batch.
  static Status check_prepare(const Desc& desc, const typename Op::PrepareArgs& host, std::int64_t* batch);
};

}  // namespace kvserve::detail
