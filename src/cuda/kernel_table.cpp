// The CUDA kernel table: every compiled configuration, as data.
#include "cuda/cuda_kernels.hpp"

namespace kvserve::detail {

std::vector<CompiledKernel> cuda_compiled_kernels() { return {}; }

}  // namespace kvserve::detail
