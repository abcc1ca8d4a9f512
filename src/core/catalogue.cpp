// The catalogue of ops and compiled kernels this build offers.
#include "core/backend_kernels.hpp"
#if KVSERVE_WITH_CUDA
#include "cuda/cuda_kernels.hpp"
#endif

namespace kvserve {
namespace {
// Every op has a CPU kernel for every configuration its descriptor accepts.
#define KVSERVE_OP_NAME(Op, backends) Op::kName,
constexpr const char* kCpuOps[] = {KVSERVE_FOR_EACH_OP(KVSERVE_OP_NAME)};
#undef KVSERVE_OP_NAME
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
