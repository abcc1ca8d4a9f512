// Sampling, SamplingRenorm, ChainSpeculativeSampling and TokenPenalty on
// CUDA: the kernel identity each plan reports, and run(), which turns the
// checked arguments into the kernels' parameter structs and launches them.
// No workspace, no prepare, no host synchronisation: per-row seeds, offsets
// and parameters are read on the device, so every run is graph-capturable.
#include <string>
#include <type_traits>

#include "cuda/common/runtime.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/sampling/sampling_params.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

template <class T>
const T* optional_ptr(const TensorView& t) {
  return t.defined() ? t.ptr<const T>() : nullptr;
}

template <class T>
RowParam<T> row_param(T scalar, const TensorView& rows) {
  return {scalar, optional_ptr<T>(rows)};
}

template <class Args>
RandomParams random_params(const Args& a) {
  return {a.seed, a.offset, optional_ptr<std::int32_t>(a.seeds), optional_ptr<std::int32_t>(a.offsets)};
}

// Makes the plan's device current and launches; `launch(stream)` returns a
// cudaError_t as int.
template <class Launch>
Status launch_on(Device device, const char* op, Launch&& launch, Stream stream) {
  DeviceScope scope(device);
  KVSERVE_TRY(cuda_status(scope.error(), op, "selecting " + device.to_string()));
  return cuda_status(static_cast<cudaError_t>(launch(stream.handle)), op, "kernel launch");
}

// create_resources of the row-kernel plans: how the kernel walks rows of the
// plan's vocabulary on its device, found once (RowLaunch) so that run() asks
// the device nothing.
// `Describe` takes the plan's vocabulary, or the whole plan state where the
// kernel depends on more of the description.
template <class Op, auto Describe>
Status describe_row_launch(PlanState<Op>& p) {
  DeviceScope scope(p.device);
  KVSERVE_TRY(cuda_status(scope.error(), Op::kName, "selecting " + p.device.to_string()));
  auto launch = std::make_shared<RowLaunch>();
  int error;
  if constexpr (std::is_invocable_v<decltype(Describe), int, RowLaunch*>) error = Describe(p.desc.vocab, launch.get());
  else error = Describe(p, launch.get());
  KVSERVE_TRY(cuda_status(static_cast<cudaError_t>(error), Op::kName, "preparing the kernel launch"));
  p.backend_resources = std::move(launch);
  return Status::ok();
}

// The sampling kernel is instantiated per input kind and filter, the renorm
// kernel per kind.
int describe_sampling_of(const PlanState<Sampling>& p, RowLaunch* out) {
  return describe_sampling(p.desc.input, p.desc.filter, p.desc.vocab, out);
}
int describe_renorm_of(const PlanState<SamplingRenorm>& p, RowLaunch* out) {
  return describe_renorm(p.desc.kind, p.desc.vocab, out);
}

template <class Op>
const RowLaunch& row_launch(const PlanState<Op>& p) {
  return *static_cast<const RowLaunch*>(p.backend_resources.get());
}

Status run_sampling(const PlanState<Sampling>& plan, const SamplingArgs& a, Workspace, Stream stream) {
  const SamplingDesc& d = plan.desc;
  SamplingParams p;
  p.input = a.input.ptr<const float>();
  p.input_stride = a.input.strides[0];
  p.out = a.out.ptr<std::int32_t>();
  p.batch = static_cast<int>(a.input.shape[0]);
  p.vocab = d.vocab;
  p.input_kind = d.input;
  p.filter = d.filter;
  p.order = d.order;
  p.temperature = row_param(d.temperature, a.temperature);
  p.top_k = row_param(std::int32_t{d.top_k}, a.top_k);
  p.top_p = row_param(d.top_p, a.top_p);
  p.min_p = row_param(d.min_p, a.min_p);
  p.random = random_params(a);
  if (p.batch == 0) return Status::ok();
  return launch_on(plan.device, Sampling::kName, [&](void* s) { return launch_sampling(p, row_launch(plan), s); },
                   stream);
}

Status run_renorm(const PlanState<SamplingRenorm>& plan, const SamplingRenormArgs& a, Workspace, Stream stream) {
  const SamplingRenormDesc& d = plan.desc;
  RenormParams p;
  p.input = a.input.ptr<const float>();
  p.input_stride = a.input.strides[0];
  p.out = a.out.ptr<float>();
  p.out_stride = a.out.strides[0];
  p.batch = static_cast<int>(a.input.shape[0]);
  p.vocab = d.vocab;
  p.kind = d.kind;
  p.top_k = row_param(std::int32_t{d.top_k}, a.top_k);
  p.top_p = row_param(d.top_p, a.top_p);
  if (p.batch == 0) return Status::ok();
  return launch_on(plan.device, SamplingRenorm::kName, [&](void* s) { return launch_renorm(p, row_launch(plan), s); },
                   stream);
}

Status run_speculative(const PlanState<ChainSpeculativeSampling>& plan, const ChainSpeculativeSamplingArgs& a,
                       Workspace, Stream stream) {
  SpeculativeParams p;
  p.draft_ids = a.draft_token_ids.ptr<const std::int32_t>();
  p.draft_ids_stride_b = a.draft_token_ids.strides[0], p.draft_ids_stride_t = a.draft_token_ids.strides[1];
  p.draft_probs = a.draft_probs.ptr<const float>();
  p.draft_stride_b = a.draft_probs.strides[0], p.draft_stride_t = a.draft_probs.strides[1];
  p.target_probs = a.target_probs.ptr<const float>();
  p.target_stride_b = a.target_probs.strides[0], p.target_stride_t = a.target_probs.strides[1];
  p.out = a.out.ptr<std::int32_t>();
  p.out_stride_b = a.out.strides[0], p.out_stride_t = a.out.strides[1];
  p.accepted = a.accepted.defined() ? a.accepted.ptr<std::int32_t>() : nullptr;
  p.emitted = a.emitted.defined() ? a.emitted.ptr<std::int32_t>() : nullptr;
  p.batch = static_cast<int>(a.draft_token_ids.shape[0]);
  p.vocab = plan.desc.vocab;
  p.num_draft = plan.desc.num_draft_tokens;
  p.random = random_params(a);
  if (p.batch == 0) return Status::ok();
  return launch_on(plan.device, ChainSpeculativeSampling::kName,
                   [&](void* s) { return launch_speculative(p, row_launch(plan), s); }, stream);
}

Status run_penalty(const PlanState<TokenPenalty>& plan, const TokenPenaltyArgs& a, Workspace, Stream stream) {
  const TokenPenaltyDesc& d = plan.desc;
  PenaltyParams p;
  p.logits = a.logits.ptr<float>();
  p.logits_stride = a.logits.strides[0];
  if (d.history == PenaltyHistory::token_counts) {
    p.counts = a.counts.ptr<const std::int32_t>();
    p.counts_stride = a.counts.strides[0];
  } else {
    p.token_ids = a.token_ids.ptr<const std::int32_t>();
    p.ids_stride_b = a.token_ids.strides[0], p.ids_stride_l = a.token_ids.strides[1];
    p.history_len = a.token_ids.shape[1];
  }
  p.batch = static_cast<int>(a.logits.shape[0]);
  p.vocab = d.vocab;
  p.repetition = row_param(d.repetition, a.repetition);
  p.frequency = row_param(d.frequency, a.frequency);
  p.presence = row_param(d.presence, a.presence);
  if (p.batch == 0 || (p.token_ids && p.history_len == 0)) return Status::ok();
  return launch_on(plan.device, TokenPenalty::kName, [&](void* s) { return launch_penalty(p, s); }, stream);
}

// Every kernel of the family: integer (fixed-point) decisions and IEEE f32
// steps in a fixed order, so deterministic, and one cluster per row, so batch
// invariant.
Result<KernelInfo> sampling_info(Device device, const char* op, std::string config) {
  auto facts = device_facts(device);
  if (!facts) return facts.status();
  KernelInfo info;
  info.backend = Backend::cuda;
  info.arch = facts->arch;
  info.op = op;
  info.config = std::move(config);
  info.precision = Precision{DType::f32, DType::f32, /*deterministic=*/true, /*batch_invariant=*/true};
  return info;
}

template <class Op>
Result<Kernel<Op>> make_kernel(Device device, std::string config,
                               Status (*run)(const PlanState<Op>&, const typename Op::Args&, Workspace, Stream),
                               Status (*create_resources)(PlanState<Op>&) = nullptr) {
  auto info = sampling_info(device, Op::kName, std::move(config));
  if (!info) return info.status();
  Kernel<Op> k;
  k.info = std::move(*info);
  k.run = run;
  k.create_resources = create_resources;
  return k;
}

// How a row is walked (sm_90 and later; older GPUs use clusters of one).
// Clusters of 8 take 16 blocks per row for batches of up to 16 rows where
// the GPU can schedule them (launch_rows), which the key says as "/16".
std::string row_text(int vocab) {
  const int cluster = row_cluster_size(vocab);
  return "radix=10/8/7/7 cluster=" + std::to_string(cluster) + (cluster == kPortableCluster ? "/16" : "") +
         " threads=" + std::to_string(kRowThreads);
}

std::string text(std::string_view field, std::string_view value) {
  return std::string(field) + "=" + std::string(value);
}

}  // namespace
}  // namespace cuda

template <>
Result<Kernel<Sampling>> cuda_kernel<Sampling>(const SamplingDesc& d, Device device) {
  return cuda::make_kernel<Sampling>(
      device,
      cuda::text("input", name_of(d.input)) + " " + cuda::text("filter", name_of(d.filter)) + " " +
          cuda::text("params", name_of(d.params)) + " " + cuda::text("random", name_of(d.random)) +
          " " + cuda::row_text(d.vocab),
      cuda::run_sampling, cuda::describe_row_launch<Sampling, cuda::describe_sampling_of>);
}

template <>
Result<Kernel<SamplingRenorm>> cuda_kernel<SamplingRenorm>(const SamplingRenormDesc& d, Device device) {
  return cuda::make_kernel<SamplingRenorm>(
      device, cuda::text("kind", name_of(d.kind)) + " " + cuda::text("params", name_of(d.params)) +
                  " " + cuda::row_text(d.vocab),
      cuda::run_renorm, cuda::describe_row_launch<SamplingRenorm, cuda::describe_renorm_of>);
}

template <>
Result<Kernel<ChainSpeculativeSampling>> cuda_kernel<ChainSpeculativeSampling>(const ChainSpeculativeSamplingDesc& d,
                                                                              Device device) {
  return cuda::make_kernel<ChainSpeculativeSampling>(
      device,
      "n=" + std::to_string(d.num_draft_tokens) + " " + cuda::text("random", name_of(d.random)) + " " +
          cuda::row_text(d.vocab),
      cuda::run_speculative, cuda::describe_row_launch<ChainSpeculativeSampling, cuda::describe_speculative>);
}

template <>
Result<Kernel<TokenPenalty>> cuda_kernel<TokenPenalty>(const TokenPenaltyDesc& d, Device device) {
  return cuda::make_kernel<TokenPenalty>(
      device, cuda::text("history", name_of(d.history)) + " " + cuda::text("params", name_of(d.params)),
      cuda::run_penalty);
}

}  // namespace kvserve::detail
