// CUDA kernel for ChainSpeculativeSampling: one cluster per row; thread 0 of
// each block runs the n acceptance tests (a handful of loads), then the
// cluster draws the token after the emitted drafts from the residual, or the
// bonus token from p_n.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/sampling/crossing_search.cuh"
#include "cuda/sampling/row_launch.cuh"
#include "cuda/sampling/row_passes.cuh"
#include "cuda/sampling/row_views.cuh"

namespace kvserve::detail::cuda {
namespace {

// Draws from every token of the row with the given random bits (-1: no
// weight): one pass loads the slice, the draw reads it from shared memory.
template <class View>
__device__ int draw_whole_row(const Slice<View>& slice, std::uint64_t bits, RowShared& s, const RowCluster& cl) {
  row_stats<true, false>(slice, Histogram::none, s, cl);
  return draw(slice, Kept{}, bits, s, cl);
}

__global__ void __launch_bounds__(kRowThreads, 2) speculative_kernel(const SpeculativeParams p, const RowGeometry g) {
  __shared__ RowShared s;
  __shared__ int emitted;
  const RowCluster cl = this_row_cluster();
  init_shared(s);
  const int b = row_of_cluster(cl), n = p.num_draft, vocab = p.vocab;
  const std::int32_t* ids = p.draft_ids + b * p.draft_ids_stride_b;
  const auto draft_row = [&](int t) { return p.draft_probs + b * p.draft_stride_b + t * p.draft_stride_t; };
  const auto target_row = [&](int t) { return p.target_probs + b * p.target_stride_b + t * p.target_stride_t; };
  std::int32_t* out = p.out + b * p.out_stride_b;

  if (threadIdx.x == 0) {
    int accepted = 0, first_failure = n;
    for (int t = 0; t < n; ++t) {
      const std::int32_t id = ids[t * p.draft_ids_stride_t];
      bool pass = false;
      if (id >= 0 && id < vocab) {
        // u < p / q as u * q < p; the product of two 24-bit significands is exact in double.
        const double u = accept_uniform(row_random_block(p.random, b, static_cast<std::uint32_t>(t)));
        pass = u * static_cast<double>(draft_row(t)[id]) < static_cast<double>(target_row(t)[id]);
      }
      accepted += pass;
      if (!pass && first_failure == n) first_failure = t;
    }
    if (cl.rank == 0) {
      for (int t = 0; t < first_failure; ++t) out[t * p.out_stride_t] = ids[t * p.draft_ids_stride_t];
      for (int t = first_failure + 1; t <= n; ++t) out[t * p.out_stride_t] = -1;
      if (p.accepted) p.accepted[b] = accepted;
      if (p.emitted) p.emitted[b] = first_failure;
    }
    emitted = first_failure;
  }
  __syncthreads();
  const int e = emitted;
  const std::uint64_t bits = draw_bits(row_random_block(p.random, b, static_cast<std::uint32_t>(e)));
  int token = -1;
  if (e < n) token = draw_whole_row(slice_of(ResidualRow{{target_row(e)}, {draft_row(e)}}, g, cl), bits, s, cl);
  if (token < 0) token = draw_whole_row(slice_of(ProbsRow{{target_row(e)}}, g, cl), bits, s, cl);
  if (cl.rank == 0 && threadIdx.x == 0) out[e * p.out_stride_t] = token;
}

}  // namespace

int describe_speculative(int vocab, RowLaunch* out) { return describe_rows(speculative_kernel, vocab, true, out); }

int launch_speculative(const SpeculativeParams& p, const RowLaunch& launch, void* stream) {
  return launch_rows(speculative_kernel, launch, p, p.batch, stream);
}

}  // namespace kvserve::detail::cuda
