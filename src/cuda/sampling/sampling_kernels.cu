// CUDA kernels for Sampling and SamplingRenorm: one block per row finds the
// filter's kept set with the radix selection of row_select.cuh, then draws
// one token or rewrites the row.
#include <cuda_runtime.h>

#include "cuda/sampling/row_select.cuh"

namespace kvserve::detail::cuda {
namespace {

// The cuts of top-k and top-p. `level0_ready`: row_stats left level 0's
// histogram in place (no other cut has run on the row since).
__device__ Cut cut_by_count(const auto& row, int vocab, const RowStats& stats, std::uint64_t k, RowShared& s,
                            bool level0_ready = true) {
  return k < stats.positive ? find_cut(row, vocab, By::count, k, level0_ready, s) : whole_row(stats.total);
}

__device__ Cut cut_by_mass(const auto& row, int vocab, const RowStats& stats, std::uint64_t target, RowShared& s,
                           bool level0_ready = true) {
  return target < stats.total ? find_cut(row, vocab, By::mass, target, level0_ready, s) : whole_row(stats.total);
}

// The kept set of row b under the plan's filter (docs/sampling.md, "Kept sets").
template <class Row>
__device__ Kept kept_set(const SamplingParams& p, int b, const Row& row, const RowStats& stats, RowShared& s) {
  const int vocab = p.vocab;
  switch (p.filter) {
    case SamplingFilter::top_k:
      return resolve(row, vocab, cut_by_count(row, vocab, stats, effective_top_k(row_param(p.top_k, b), vocab), s), s);
    case SamplingFilter::top_p:
      return resolve(row, vocab, cut_by_mass(row, vocab, stats, top_p_target(row_param(p.top_p, b), stats.total), s),
                     s);
    case SamplingFilter::min_p: {
      const std::uint64_t floor = ceil_fraction(stats.max_weight, row_param(p.min_p, b));
      const std::uint64_t min_weight = floor > 0 ? floor : 1;
      return Kept{0, INT_MAX, min_weight, mass_at_least(row, vocab, min_weight, s)};
    }
    case SamplingFilter::top_k_top_p: {
      const std::uint64_t k = effective_top_k(row_param(p.top_k, b), vocab);
      const Cut by_k = cut_by_count(row, vocab, stats, k, s);
      const std::uint64_t base = p.order == TopKTopPOrder::k_then_p ? by_k.set.mass : stats.total;
      const bool level0_ready = k >= stats.positive;  // else the top-k cut's levels replaced level 0
      const Cut by_p = cut_by_mass(row, vocab, stats, top_p_target(row_param(p.top_p, b), base), s, level0_ready);
      const KeptSet higher = higher_cut(by_k.set, by_p.set);
      const bool k_binds = higher.code == by_k.set.code && higher.ties == by_k.set.ties;
      return resolve(row, vocab, k_binds ? by_k : by_p, s);
    }
    case SamplingFilter::none:
    case SamplingFilter::greedy: break;
  }
  return Kept{0, INT_MAX, 1, stats.total};
}

bool __device__ uses_histogram(SamplingFilter f) {
  return f == SamplingFilter::top_k || f == SamplingFilter::top_p || f == SamplingFilter::top_k_top_p;
}

template <class Row>
__device__ int sample_row(const SamplingParams& p, int b, const Row& row, RowShared& s) {
  const RowStats stats = row_stats(row, p.vocab, uses_histogram(p.filter), s);
  const Kept kept = kept_set(p, b, row, stats, s);
  return draw(row, p.vocab, kept, draw_bits(row_random_block(p.random, b, 0)), s);
}

__global__ void __launch_bounds__(kRowThreads, 1) sampling_kernel(const SamplingParams p) {
  __shared__ RowShared s;
  const int b = static_cast<int>(blockIdx.x);
  const float* x = p.input + b * p.input_stride;
  const bool logits = p.input_kind == SamplingInput::logits;
  const float temperature = logits ? row_param(p.temperature, b) : 1.f;
  int token;
  if (p.filter == SamplingFilter::greedy || (logits && !samples_at(temperature))) {
    token = logits ? row_stats(CandidateRow{x}, p.vocab, false, s).best_index
                   : row_stats(ProbsRow{x}, p.vocab, false, s).best_index;
  } else if (logits) {
    token = sample_row(p, b, LogitsRow{x, row_max(x, p.vocab, s), temperature}, s);
  } else {
    token = sample_row(p, b, ProbsRow{x}, s);
  }
  if (threadIdx.x == 0) p.out[b] = token;
}

// Kept tokens keep their value (mask) or become value / kept mass (renorm);
// the rest become `dropped`. Every token is read before it is written, by the
// same thread, so out may be the input.
template <class Row>
__device__ void rewrite_row(const Row& row, int vocab, const Kept& kept, bool divide, float dropped, float* out) {
  const float mass = weight_to_float(kept.mass);
  for_each_token(row, vocab, [&](int j, float v) {
    const bool keep = kept.keeps(j, rank_code(v), row.weight(v));
    out[j] = keep ? (divide ? v / mass : v) : dropped;
  });
}

__global__ void __launch_bounds__(kRowThreads, 1) renorm_kernel(const RenormParams p) {
  __shared__ RowShared s;
  const int b = static_cast<int>(blockIdx.x);
  const float* x = p.input + b * p.input_stride;
  float* y = p.out + b * p.out_stride;
  const int vocab = p.vocab;
  const std::uint64_t k = effective_top_k(row_param(p.top_k, b), vocab);
  if (p.kind == RenormKind::top_k_mask_logits) {
    const CandidateRow row{x};
    const RowStats stats = row_stats(row, vocab, true, s);
    rewrite_row(row, vocab, resolve(row, vocab, cut_by_count(row, vocab, stats, k, s), s), false, -INFINITY, y);
    return;
  }
  const ProbsRow row{x};
  const RowStats stats = row_stats(row, vocab, true, s);
  const Cut cut = p.kind == RenormKind::top_k_renorm_probs
                      ? cut_by_count(row, vocab, stats, k, s)
                      : cut_by_mass(row, vocab, stats, top_p_target(row_param(p.top_p, b), stats.total), s);
  rewrite_row(row, vocab, resolve(row, vocab, cut, s), true, 0.f, y);
}

}  // namespace

int launch_sampling(const SamplingParams& p, void* stream) {
  sampling_kernel<<<p.batch, kRowThreads, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

int launch_renorm(const RenormParams& p, void* stream) {
  renorm_kernel<<<p.batch, kRowThreads, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace kvserve::detail::cuda
