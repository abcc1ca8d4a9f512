// Checking that plans refuse bad descriptors and bad run() arguments: each
// fault must produce the expected status code, a message naming the field or
// argument, and leave every output untouched (still poisoned). Built on the
// shared checks of harness.hpp.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "harness/harness.hpp"
#include "kvserve/plan.hpp"

namespace kvserve::test {

// A descriptor field set to a bad value.
template <class Op>
struct DescFault {
  std::string field;  // the message must contain 'field'
  std::function<void(typename Op::Desc&)> apply;
};

// supports() and create() refuse each fault with InvalidArgument naming the
// field; the good descriptor itself is accepted.
template <class Op>
void expect_desc_faults_refused(const typename Op::Desc& good, const std::vector<DescFault<Op>>& faults) {
  ASSERT_TRUE(Plan<Op>::supports(good, Device::cpu())) << Plan<Op>::supports(good, Device::cpu()).to_string();
  for (const auto& f : faults) {
    SCOPED_TRACE(std::string(Op::kName) + " descriptor fault on " + f.field);
    typename Op::Desc d = good;
    f.apply(d);
    const Status s = Plan<Op>::supports(d, Device::cpu());
    expect_rejected(s, f.field);
    EXPECT_EQ(Plan<Op>::create(d, Device::cpu()).status().message(), s.message());
  }
}

// A run() argument made bad. `keep` owns any memory the fault points at.
template <class Op>
struct ArgFault {
  std::string label;
  std::string arg;     // the message must contain 'arg'
  std::string detail;  // and this (e.g. "request 1, position 0"); "" matches anything
  std::function<void(typename Op::Args&, std::vector<Buffer>& keep)> apply;
};

// A tensor argument of an op, reached through its Args.
template <class Op>
struct TensorArg {
  std::string name;
  std::function<TensorView&(typename Op::Args&)> get;
  bool optional = false;      // may be left undefined
  bool fixed_extent = true;   // its last extent is fixed by the descriptor or another argument
};

// The faults every tensor argument must be refused for: missing, wrong dtype,
// rank, extent, a negative extent, a strided last dimension, another device.
template <class Op>
std::vector<ArgFault<Op>> tensor_faults(const std::vector<TensorArg<Op>>& args, Device plan_device) {
  using Args = typename Op::Args;
  using K = ViewFaultKind;
  std::vector<ArgFault<Op>> faults;
  for (const TensorArg<Op>& t : args) {
    std::vector<K> kinds;
    if (!t.optional) kinds.push_back(K::no_data);
    kinds.insert(kinds.end(), {K::wrong_dtype, K::extra_dimension, K::negative_extent});
    if (t.fixed_extent) kinds.push_back(K::last_extent_plus_one);
    kinds.insert(kinds.end(), {K::strided_last_dimension, K::other_device});
    for (ViewFault& f : view_faults(kinds, plan_device))
      faults.push_back({t.name + ": " + f.what, t.name, "",
                        [get = t.get, change = f.apply](Args& a, std::vector<Buffer>&) { change(get(a)); }});
  }
  return faults;
}

// run() refuses `args` with `code` and a message containing each of
// `needles`, and writes none of `outputs` (poisoned first).
template <class Op>
void expect_run_refused(const Plan<Op>& plan, const typename Op::Args& args, Workspace ws, std::vector<Buffer> outputs,
                        const std::vector<std::string>& needles, StatusCode code = StatusCode::invalid_argument) {
  for (Buffer& out : outputs) out.poison();
  const Status s = plan.run(args, ws, {});
  EXPECT_EQ(s.code(), code) << s.to_string();
  for (const std::string& needle : needles)
    EXPECT_NE(s.message().find(needle), std::string::npos) << "expected \"" << needle << "\" in: " << s.message();
  for (Buffer& out : outputs) EXPECT_TRUE(still_poisoned(out)) << "a refused run() wrote an output";
}

// Every fault refused with InvalidArgument naming its argument (and its
// detail), outputs untouched; a workspace one byte short refused as
// WorkspaceTooSmall where the plan needs one; then the good arguments run.
template <class Op>
void expect_arg_faults_refused(const Plan<Op>& plan, const typename Op::Args& good,
                               const std::vector<ArgFault<Op>>& faults, const std::vector<Buffer>& outputs,
                               Workspace ws) {
  for (const auto& f : faults) {
    SCOPED_TRACE(std::string(Op::kName) + " argument fault: " + f.label);
    typename Op::Args a = good;
    std::vector<Buffer> keep;
    f.apply(a, keep);
    expect_run_refused(plan, a, ws, outputs, {"'" + f.arg + "'", f.detail});
  }
  if (plan.workspace_bytes() > 0)
    expect_run_refused(plan, good, Workspace{ws.data, plan.workspace_bytes() - 1}, outputs, {},
                       StatusCode::workspace_too_small);
  const Status s = plan.run(good, ws, {});
  EXPECT_TRUE(s) << "the good arguments: " << s.to_string();
}

// An int32 argument whose contents are bad (the rules read them on the host).
template <class Op>
ArgFault<Op> int_values_fault(std::string label, std::string arg, std::string detail,
                              std::function<TensorView&(typename Op::Args&)> get, std::vector<std::int32_t> values,
                              Device device) {
  return {std::move(label), std::move(arg), std::move(detail),
          [get, values, device](typename Op::Args& a, std::vector<Buffer>& keep) {
            keep.push_back(int_buffer(values, device));
            get(a) = keep.back().view({static_cast<std::int64_t>(values.size())});
          }};
}

// prepare() refuses bad host metadata with InvalidArgument naming `arg`.
template <class Op>
void expect_prepare_refused(Plan<Op>& plan, const typename Op::PrepareArgs& host, const std::string& arg,
                            Workspace ws) {
  SCOPED_TRACE(std::string(Op::kName) + " prepare fault on " + arg);
  expect_rejected(plan.prepare(host, ws, {}), arg);
}

// run() before any prepare(), and run() after a prepare() for one request
// fewer (`shorter`), are refused without writing; the second names
// `batch_arg`, the argument run() reads the batch from.
template <class Op>
void expect_prepare_protocol(Plan<Op>& plan, const typename Op::PrepareArgs& shorter, const typename Op::Args& good,
                             const std::string& batch_arg, Workspace ws, const std::vector<Buffer>& outputs) {
  expect_run_refused(plan, good, ws, outputs, {"prepare()"});
  ASSERT_TRUE(plan.prepare(shorter, ws, {}));
  expect_run_refused(plan, good, ws, outputs, {"'" + batch_arg + "'", "last prepare()"});
}

}  // namespace kvserve::test
