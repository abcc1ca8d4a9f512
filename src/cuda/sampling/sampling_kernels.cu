// CUDA kernels for Sampling and SamplingRenorm: one cluster per row finds the
// filter's kept set with the radix selection of radix_select.cuh, then draws
// one token or rewrites the row.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "cuda/sampling/crossing_search.cuh"
#include "cuda/sampling/radix_select.cuh"
#include "cuda/sampling/row_launch.cuh"
#include "cuda/sampling/row_passes.cuh"
#include "cuda/sampling/row_views.cuh"

namespace kvserve::detail::cuda {
namespace {

// The cuts of top-k and top-p.
template <class View>
__device__ Cut cut_by_count(const Slice<View>& slice, const RowStats& stats, std::uint64_t k, RowShared& s,
                            const RowCluster& cl) {
  return k < stats.positive ? find_cut(slice, By::count, k, s, cl) : whole_row(stats.total);
}

template <class View>
__device__ Cut cut_by_mass(const Slice<View>& slice, const RowStats& stats, std::uint64_t target, RowShared& s,
                           const RowCluster& cl) {
  return target < stats.total ? find_cut(slice, By::mass, target, s, cl) : whole_row(stats.total);
}

// The kept set of row b under filter F (docs/sampling.md, "Kept sets").
template <SamplingFilter F, class View>
__device__ __forceinline__ Kept kept_set(const SamplingParams& p, int b, const Slice<View>& slice,
                                         const RowStats& stats, RowShared& s, const RowCluster& cl) {
  switch (F) {
    case SamplingFilter::top_k:
      return resolve(slice, cut_by_count(slice, stats, effective_top_k(row_param(p.top_k, b), p.vocab), s, cl), s, cl);
    case SamplingFilter::top_p:
      return resolve(slice, cut_by_mass(slice, stats, top_p_target(row_param(p.top_p, b), stats.total), s, cl), s,
                     cl);
    case SamplingFilter::min_p: {
      const std::uint64_t floor = ceil_fraction(stats.max_weight, row_param(p.min_p, b));
      return Kept{0, INT_MAX, floor > 0 ? floor : 1};
    }
    case SamplingFilter::top_k_top_p: {
      // Both cuts start from the same level 0 (row_stats keeps it).
      const std::uint64_t k = effective_top_k(row_param(p.top_k, b), p.vocab);
      const Cut by_k = cut_by_count(slice, stats, k, s, cl);
      const bool k_then_p = p.order == TopKTopPOrder::k_then_p;
      const std::uint64_t target = top_p_target(row_param(p.top_p, b), k_then_p ? by_k.set.mass : stats.total);
      // Both kept sets are prefixes of one rank order, so the kept set is the
      // shorter: a top-k set short of the top-p target (joint only) is it.
      if (target > by_k.set.mass) return resolve(slice, by_k, s, cl);
      // Else the top-p cut lies among the top-k cut's survivors (every token
      // above its code, and all tied at it); when they are few, it is found
      // among them instead of by another radix selection of the row.
      const bool few = k < stats.positive && k - by_k.set.ties + by_k.tied <= kMaxCutCandidates;
      const Cut by_p = few && target < stats.total
                           ? cut_among_candidates(
                                 slice,
                                 [&](auto&& f) {  // the survivors: in the top-k cut's list when it holds them all
                                   if (lists_all_from(by_k.set.code, s)) for_each_listed(slice, s, f);
                                   else for_each_token<false>(slice, f);
                                 },
                                 [&](unsigned c) { return c >= by_k.set.code; }, Aggregate{}, By::mass, target, s, cl)
                           : cut_by_mass(slice, stats, target, s, cl);
      const KeptSet higher = higher_cut(by_k.set, by_p.set);
      const bool k_binds = higher.code == by_k.set.code && higher.ties == by_k.set.ties;
      return resolve(slice, k_binds ? by_k : by_p, s, cl);
    }
    case SamplingFilter::none:
    case SamplingFilter::greedy: break;
  }
  return Kept{};
}

// Level 0 as the filter's cuts need it: counts for a top-k cut, weights for both.
constexpr Histogram histogram_for(SamplingFilter f) {
  switch (f) {
    case SamplingFilter::top_p: return Histogram::mass;
    case SamplingFilter::top_k:
    case SamplingFilter::top_k_top_p: return Histogram::count_and_mass;
    default: return Histogram::none;
  }
}

// `Load`: the slice still has to be read from device memory (else it was,
// by row_max).
template <SamplingFilter F, bool Load, class View>
__device__ __forceinline__ int sample_row(const SamplingParams& p, int b, const Slice<View>& slice, RowShared& s,
                                          const RowCluster& cl) {
  const RowStats stats = row_stats<Load, false>(slice, histogram_for(F), s, cl);
  const Kept kept = kept_set<F>(p, b, slice, stats, s, cl);
  return draw(slice, kept, draw_bits(row_random_block(p.random, b, 0)), s, cl);
}

// Every exchange between the blocks of a cluster ends with a cluster barrier,
// so no block leaves while another still reads its shared memory. One
// instantiation per input kind and filter (the parameters' own input_kind
// and filter are not read): each compiles only its own path, so registers
// are not spent on the others'.
template <SamplingInput In, SamplingFilter F>
__global__ void __launch_bounds__(kRowThreads, 2) sampling_kernel(const SamplingParams p, const RowGeometry g) {
  __shared__ RowShared s;
  const RowCluster cl = this_row_cluster();
  init_shared(s);
  const int b = row_of_cluster(cl);
  const float* x = p.input + b * p.input_stride;
  constexpr bool logits = In == SamplingInput::logits;
  const float temperature = logits ? row_param(p.temperature, b) : 1.f;
  int token;
  if (F == SamplingFilter::greedy || (logits && !samples_at(temperature))) {
    const Histogram none = Histogram::none;
    token = logits ? row_stats<true, true>(slice_of(CandidateRow{{x}}, g, cl), none, s, cl).best_index
                   : row_stats<true, true>(slice_of(ProbsRow{{x}}, g, cl), none, s, cl).best_index;
  } else if (logits) {
    Slice<LogitsRow> slice = slice_of(LogitsRow{{x}, 0.f, temperature}, g, cl);
    slice.view.max = row_max(slice, s, cl);
    token = sample_row<F, false>(p, b, slice, s, cl);
  } else {
    token = sample_row<F, true>(p, b, slice_of(ProbsRow{{x}}, g, cl), s, cl);
  }
  if (cl.rank == 0 && threadIdx.x == 0) p.out[b] = token;
}

// Kept tokens keep their value (mask) or become value / kept mass (renorm);
// the rest become `dropped`. A block writes only its own slice, each token by
// the thread that read it, so out may be the input: as 16-byte vectors from
// a resident slice to a 16-byte aligned output (one store per four tokens,
// whole sectors), else token by token with consecutive threads on
// consecutive tokens. Ends with a cluster barrier: the cut's last pick read
// other blocks' shared memory.
template <class View>
__device__ void rewrite_row(const Slice<View>& slice, const Kept& kept, bool divide, float mass, float dropped,
                            float* out, const RowCluster& cl) {
  float* const row = out + slice.begin;
  const auto rewritten = [&](int i, float v) {
    return kept.kept_weight(slice, slice.begin + i, v) > 0 ? (divide ? v / mass : v) : dropped;
  };
  const int tid = static_cast<int>(threadIdx.x);
  int first_single = 0;
  if (slice.resident && (reinterpret_cast<std::uintptr_t>(row) & 15u) == 0) {
    const float4* in = reinterpret_cast<const float4*>(resident_storage());
    const int vectors = slice.count / 4;
    for (int q = tid; q < vectors; q += kRowThreads) {
      const float4 v = in[q];
      reinterpret_cast<float4*>(row)[q] =
          float4{rewritten(4 * q, v.x), rewritten(4 * q + 1, v.y), rewritten(4 * q + 2, v.z), rewritten(4 * q + 3, v.w)};
    }
    first_single = 4 * vectors;
  }
  with_reader(slice, [&](auto read) {
    for (int i = first_single + tid; i < slice.count; i += kRowThreads) row[i] = rewritten(i, read(i));
  });
  cl.sync();
}

// One instantiation per kind (the parameters' own kind is not read).
template <RenormKind K>
__global__ void __launch_bounds__(kRowThreads, 2) renorm_kernel(const RenormParams p, const RowGeometry g) {
  __shared__ RowShared s;
  const RowCluster cl = this_row_cluster();
  init_shared(s);
  const int b = row_of_cluster(cl);
  const float* x = p.input + b * p.input_stride;
  float* y = p.out + b * p.out_stride;
  if constexpr (K == RenormKind::top_k_mask_logits) {
    const Slice<CandidateRow> slice = slice_of(CandidateRow{{x}}, g, cl);
    const RowStats stats = row_stats<true, false>(slice, Histogram::count_and_mass, s, cl);
    const std::uint64_t k = effective_top_k(row_param(p.top_k, b), p.vocab);
    rewrite_row(slice, resolve(slice, cut_by_count(slice, stats, k, s, cl), s, cl), false, 0.f, -INFINITY, y, cl);
  } else {
    const Slice<ProbsRow> slice = slice_of(ProbsRow{{x}}, g, cl);
    constexpr bool by_count = K == RenormKind::top_k_renorm_probs;
    const RowStats stats = row_stats<true, false>(slice, by_count ? Histogram::count_and_mass : Histogram::mass, s, cl);
    const Cut cut = by_count ? cut_by_count(slice, stats, effective_top_k(row_param(p.top_k, b), p.vocab), s, cl)
                             : cut_by_mass(slice, stats, top_p_target(row_param(p.top_p, b), stats.total), s, cl);
    rewrite_row(slice, resolve(slice, cut, s, cl), true, weight_to_float(cut.set.mass), 0.f, y, cl);
  }
}

}  // namespace

using SamplingKernel = void (*)(SamplingParams, RowGeometry);

template <SamplingInput In>
SamplingKernel sampling_kernel_for(SamplingFilter f) {
  switch (f) {
    case SamplingFilter::none: return sampling_kernel<In, SamplingFilter::none>;
    case SamplingFilter::top_k: return sampling_kernel<In, SamplingFilter::top_k>;
    case SamplingFilter::top_p: return sampling_kernel<In, SamplingFilter::top_p>;
    case SamplingFilter::min_p: return sampling_kernel<In, SamplingFilter::min_p>;
    case SamplingFilter::top_k_top_p: return sampling_kernel<In, SamplingFilter::top_k_top_p>;
    case SamplingFilter::greedy: break;
  }
  return sampling_kernel<In, SamplingFilter::greedy>;
}

SamplingKernel sampling_kernel_for(SamplingInput in, SamplingFilter f) {
  return in == SamplingInput::logits ? sampling_kernel_for<SamplingInput::logits>(f)
                                     : sampling_kernel_for<SamplingInput::probs>(f);
}

int describe_sampling(SamplingInput in, SamplingFilter f, int vocab, RowLaunch* out) {
  return describe_rows(sampling_kernel_for(in, f), vocab, true, out);
}
using RenormKernel = void (*)(RenormParams, RowGeometry);

RenormKernel renorm_kernel_for(RenormKind kind) {
  switch (kind) {
    case RenormKind::top_k_renorm_probs: return renorm_kernel<RenormKind::top_k_renorm_probs>;
    case RenormKind::top_p_renorm_probs: return renorm_kernel<RenormKind::top_p_renorm_probs>;
    case RenormKind::top_k_mask_logits: break;
  }
  return renorm_kernel<RenormKind::top_k_mask_logits>;
}

int describe_renorm(RenormKind kind, int vocab, RowLaunch* out) {
  return describe_rows(renorm_kernel_for(kind), vocab, true, out);
}

int launch_sampling(const SamplingParams& p, const RowLaunch& launch, void* stream) {
  return launch_rows(sampling_kernel_for(p.input_kind, p.filter), launch, p, p.batch, stream);
}

int launch_renorm(const RenormParams& p, const RowLaunch& launch, void* stream) {
  return launch_rows(renorm_kernel_for(p.kind), launch, p, p.batch, stream);
}

}  // namespace kvserve::detail::cuda
