// The lifecycle every op follows (SPEC §1):
//
//   auto plan = Plan<Op>::create(desc, device);   // validate, select a kernel; no data touched
//   plan->workspace_bytes();                      // pure function of desc and device
//   plan->prepare(host_metadata, ws, stream);     // only ops scheduled from lengths
//   plan->run(args, ws, stream);                  // async on CUDA; const; many times
//
// Op is a tag type from one of the family headers; it names the descriptor
// (Op::Desc), the run arguments (Op::Args) and, for ops that schedule work from
// host-side lengths, the prepare arguments (Op::PrepareArgs).
//
// Guarantees common to every plan:
// - create() and supports() share one selection, so they never disagree;
// - run() is const: safe from several threads on different streams as long as
//   each call has its own workspace (the workspace holds the schedule);
//   create() and supports() are safe from any thread; prepare() is not (it
//   records the prepared batch in the plan): one thread prepares, then runs;
// - run() allocates nothing, never synchronises, and checks every tensor
//   argument against the descriptor (dtype, rank, shape, strides, device)
//   before anything is launched: a bad argument writes nothing;
// - the CPU backend runs synchronously on the calling thread.
#pragma once

#include <memory>
#include <type_traits>

#include "kvserve/core.hpp"

namespace kvserve {

namespace detail {
template <class Op>
struct PlanState;  // defined by the library (src/core/plan_state.hpp)
}  // namespace detail

template <class Op>
class Plan {
 public:
  using Desc = typename Op::Desc;
  using Args = typename Op::Args;

  static Result<Plan> create(const Desc& desc, Device device);
  // ok() when create() would succeed; otherwise the status create() returns.
  static Status supports(const Desc& desc, Device device);

  // Bytes of workspace run() (and prepare()) need; 0 when none.
  std::size_t workspace_bytes() const;

  // Builds the schedule for the next run()s from host-side metadata and places
  // it in the workspace (on CUDA: an asynchronous copy on `stream` from pinned
  // staging; no device synchronisation). Call once per step; run() then any
  // number of times with the same batch.
  Status prepare(const typename Op::PrepareArgs& host, Workspace workspace, Stream stream)
    requires Op::kHasPrepare;

  Status run(const Args& args, Workspace workspace, Stream stream = {}) const;
  // ok() when run() would accept `args` (every tensor against the descriptor,
  // the device and the last prepare()); launches nothing, reads no tensor data.
  Status can_implement(const Args& args) const;

  const Desc& desc() const;
  Device device() const;
  // The selected kernel and its precision promise.
  const KernelInfo& kernel() const;

  Plan(Plan&&) noexcept;
  Plan& operator=(Plan&&) noexcept;
  ~Plan();

 private:
  explicit Plan(std::unique_ptr<detail::PlanState<Op>> state);
  std::unique_ptr<detail::PlanState<Op>> state_;
};

// Ops without host-side scheduling take no prepare().
struct NoPrepare {};

// The types an op's tag names (`struct Op : OpTypes<Desc, Args[, PrepareArgs]>
// { kName }` in each family header); kHasPrepare follows from PrepareArgs.
template <class DescT, class ArgsT, class PrepareArgsT = NoPrepare>
struct OpTypes {
  using Desc = DescT;
  using Args = ArgsT;
  using PrepareArgs = PrepareArgsT;
  static constexpr bool kHasPrepare = !std::is_same_v<PrepareArgsT, NoPrepare>;
};

}  // namespace kvserve
