// Sampling, SamplingRenorm, ChainSpeculativeSampling and TokenPenalty on
// CUDA: the row each op looks up, how its kernel walks rows of the plan's
// vocabulary (found once, at create), and run(), which turns the checked
// arguments into the kernels' parameter structs and launches them. No
// workspace, no prepare, no host synchronisation: per-row seeds, offsets
// and parameters are read on the device, so every run is graph-capturable.
#include <string>

#include "cuda/common/cuda_plan.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/registry/instantiate.hpp"
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

Status run_sampling(decltype(&launch_sampling) launch, const RowLaunch& rows, const SamplingDesc& d, Device device, const SamplingArgs& a, Stream stream) {
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
  return launch_on(device, Sampling::kName, [&] { return launch(p, rows, stream.handle); });
}

Status run_renorm(decltype(&launch_renorm) launch, const RowLaunch& rows, const SamplingRenormDesc& d, Device device, const SamplingRenormArgs& a,
                  Stream stream) {
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
  return launch_on(device, SamplingRenorm::kName, [&] { return launch(p, rows, stream.handle); });
}

Status run_speculative(decltype(&launch_speculative) launch, const RowLaunch& rows, const ChainSpeculativeSamplingDesc& d, Device device,
                       const ChainSpeculativeSamplingArgs& a, Stream stream) {
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
  p.vocab = d.vocab;
  p.num_draft = d.num_draft_tokens;
  p.random = random_params(a);
  if (p.batch == 0) return Status::ok();
  return launch_on(device, ChainSpeculativeSampling::kName, [&] { return launch(p, rows, stream.handle); });
}

Status run_penalty(decltype(&launch_penalty) launch, const TokenPenaltyDesc& d, Device device, const TokenPenaltyArgs& a,
                   Stream stream) {
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
  return launch_on(device, TokenPenalty::kName, [&] { return launch(p, stream.handle); });
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


// The family's rows are one per op; the row's launcher picks the kernel
// instantiation (input kind x filter, renorm kind) at run time.
template <auto kLaunch>
struct LaunchOf {
  template <KernelRow>
  struct Row {
    static constexpr auto launch = kLaunch;
  };
};
template <auto kLaunch, Family F>
const LaunchTable<decltype(kLaunch)> kFamilyLaunchers{
    instantiate_shard<decltype(kLaunch), F, every_row, LaunchOf<kLaunch>::template Row>()};

// What every op of the family shares: its row (f32 rows of any vocabulary),
// and the promise: integer (fixed-point) decisions and IEEE f32 steps in a
// fixed order, so deterministic, and one cluster per row, so batch invariant.
template <class SamplingOp, Family F, auto kLaunch>
struct SamplingTraitsBase {
  using Op = SamplingOp;
  struct Selected {
    decltype(kLaunch) launch;
    RowLaunch rows;  // how the kernel walks a row, found by create()
  };
  static Result<Selected> select(const typename Op::Desc&, const DeviceFacts&) {
    auto row = find_row(Op::kName, F, {DType::f32, DType::f32, kAnyHeadDim});
    if (!row) return row.status();
    return Selected{kFamilyLaunchers<kLaunch, F>[*row], {}};
  }
  static Precision precision(const typename Op::Desc&) {
    return {DType::f32, DType::f32, /*deterministic=*/true, /*batch_invariant=*/true};
  }
};

// create(): `describe(launch)` fills the RowLaunch with the plan's device
// current (it asks the device what a cluster may hold).
template <class Describe>
Status describe_rows_on(Device device, std::string_view op, RowLaunch* rows, Describe&& describe) {
  return on_device(device, op, [&] {
    return cuda_status(static_cast<cudaError_t>(describe(rows)), op, "preparing the kernel launch");
  });
}

struct SamplingTraits : SamplingTraitsBase<Sampling, Family::sampling, &launch_sampling> {
  static std::string config(const SamplingDesc& d, const Selected&) {
    return text("input", name_of(d.input)) + " " + text("filter", name_of(d.filter)) + " " +
           text("params", name_of(d.params)) + " " + text("random", name_of(d.random)) + " " + row_text(d.vocab);
  }
  static Status create(Selected& s, const SamplingDesc& d, Device device) {
    return describe_rows_on(device, Op::kName, &s.rows,
                            [&](RowLaunch* out) { return describe_sampling(d.input, d.filter, d.vocab, out); });
  }
  static Status run(const Selected& s, const SamplingDesc& d, Device device, const SamplingArgs& a, Workspace,
                    Stream stream) {
    return run_sampling(s.launch, s.rows, d, device, a, stream);
  }
};

struct SamplingRenormTraits : SamplingTraitsBase<SamplingRenorm, Family::renorm, &launch_renorm> {
  static std::string config(const SamplingRenormDesc& d, const Selected&) {
    return text("kind", name_of(d.kind)) + " " + text("params", name_of(d.params)) + " " + row_text(d.vocab);
  }
  static Status create(Selected& s, const SamplingRenormDesc& d, Device device) {
    return describe_rows_on(device, Op::kName, &s.rows,
                            [&](RowLaunch* out) { return describe_renorm(d.kind, d.vocab, out); });
  }
  static Status run(const Selected& s, const SamplingRenormDesc& d, Device device, const SamplingRenormArgs& a,
                    Workspace, Stream stream) {
    return run_renorm(s.launch, s.rows, d, device, a, stream);
  }
};

struct ChainSpeculativeSamplingTraits : SamplingTraitsBase<ChainSpeculativeSampling, Family::speculative, &launch_speculative> {
  static std::string config(const ChainSpeculativeSamplingDesc& d, const Selected&) {
    return "n=" + std::to_string(d.num_draft_tokens) + " " + text("random", name_of(d.random)) + " " +
           row_text(d.vocab);
  }
  static Status create(Selected& s, const ChainSpeculativeSamplingDesc& d, Device device) {
    return describe_rows_on(device, Op::kName, &s.rows,
                            [&](RowLaunch* out) { return describe_speculative(d.vocab, out); });
  }
  static Status run(const Selected& s, const ChainSpeculativeSamplingDesc& d, Device device,
                    const ChainSpeculativeSamplingArgs& a, Workspace, Stream stream) {
    return run_speculative(s.launch, s.rows, d, device, a, stream);
  }
};

struct TokenPenaltyTraits : SamplingTraitsBase<TokenPenalty, Family::penalty, &launch_penalty> {
  static std::string config(const TokenPenaltyDesc& d, const Selected&) {
    return text("history", name_of(d.history)) + " " + text("params", name_of(d.params));
  }
  static Status run(const Selected& s, const TokenPenaltyDesc& d, Device device, const TokenPenaltyArgs& a, Workspace,
                    Stream stream) {
    return run_penalty(s.launch, d, device, a, stream);
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(Sampling, SamplingTraits)
KVSERVE_CUDA_KERNEL(SamplingRenorm, SamplingRenormTraits)
KVSERVE_CUDA_KERNEL(ChainSpeculativeSampling, ChainSpeculativeSamplingTraits)
KVSERVE_CUDA_KERNEL(TokenPenalty, TokenPenaltyTraits)

}  // namespace kvserve::detail
