// The catalogue of ops and compiled kernels this build offers.
#include "kvserve/core.hpp"
#if KVSERVE_WITH_CUDA
#include "cuda/cuda_kernels.hpp"
#endif

namespace kvserve {
namespace {
// Every op has a CPU kernel for every configuration its descriptor accepts.
constexpr const char* kCpuOps[] = {
    "BatchPagedDecode",
    "SingleDecode", "SinglePrefill", "BatchRaggedPrefill", "BatchPagedPrefill", "CascadeAttention",
    "MergeState", "MergeStates",
    "RmsNorm",
    "GdnPrefill",
    "PagedKvAppend", "PagedMlaAppend", "KvCacheAppend",
    "Sampling", "SamplingRenorm", "ChainSpeculativeSampling", "TokenPenalty",
};
}  // namespace

std::vector<CompiledKernel> compiled_kernels() {
  std::vector<CompiledKernel> out;
  for (const char* op : kCpuOps) out.push_back({Backend::cpu, op, "every configuration the descriptor accepts"});
#if KVSERVE_WITH_CUDA
  for (auto& k : detail::cuda_compiled_kernels()) out.push_back(std::move(k));
#endif
  return out;
}

}  // namespace kvserve
