// The CUDA kernel registry (src/cuda/registry): host data, so these run
// without a GPU in any build with the CUDA backend.
#include "harness/harness.hpp"

#if !KVSERVE_TEST_CUDA
KVS_NEEDS_CUDA_BACKEND(CudaRegistry)
#else
#include <set>
#include <string>

#include "core/backend_kernels.hpp"
#include "cuda/registry/registry.hpp"

namespace kvserve::test {
namespace {

namespace cuda = ::kvserve::detail::cuda;

using cuda::kKernelRows;

// Every row was instantiated by some shard .cu file: a row added to
// kernel_rows.hpp whose family has no shard picking it shows up here.
TEST(CudaRegistry, EveryRowHasALauncher) {
  for (int row : cuda::rows_without_launcher())
    ADD_FAILURE() << "kernel row " << row << " (" << cuda::row_text(kKernelRows[row]) << ") has no launcher";
}

// A configuration no row holds answers Unsupported naming it and the family's rows.
TEST(CudaRegistry, AMissListsWhatIsBuilt) {
  auto miss = cuda::find_row("BatchPagedDecode", cuda::Family::paged_decode, {DType::bf16, DType::bf16, 80});
  ASSERT_FALSE(miss);
  EXPECT_EQ(miss.status().code(), StatusCode::unsupported);
  const std::string text = miss.status().message();
  EXPECT_NE(text.find("BatchPagedDecode: no CUDA kernel for q=bf16 kv=bf16 d=80"), std::string::npos) << text;
  EXPECT_NE(text.find("q=bf16 kv=bf16 d in {64,128,256}"), std::string::npos) << text;
  auto hit = cuda::find_row("RmsNorm", cuda::Family::norm, {DType::f16, DType::f16, 4096});
  ASSERT_TRUE(hit);
  EXPECT_EQ(kKernelRows[*hit].family, cuda::Family::norm);
  EXPECT_FALSE(cuda::find_row("RmsNorm", cuda::Family::norm, {DType::f16, DType::f16, 4100}))
      << "4100 f16 elements are not whole 16-byte chunks";
}

// The op list (core/op_list.hpp) marks `cuda` exactly the ops some kernel
// family serves (kFamilyOps): a family added without its op-list mark, or a
// mark without a family, shows up here (the first would never be selected,
// the second would not link).
TEST(CudaRegistry, OpListMarksTheOpsTheFamiliesServe) {
  std::set<std::string> marked, served;
#define KVSERVE_MARK_cuda(Op) marked.insert(Op::kName);
#define KVSERVE_MARK_cpu_only(Op)
#define KVSERVE_MARK(Op, backends) KVSERVE_MARK_##backends(Op)
  KVSERVE_FOR_EACH_OP(KVSERVE_MARK)
#undef KVSERVE_MARK
#undef KVSERVE_MARK_cpu_only
#undef KVSERVE_MARK_cuda
  for (const auto& f : cuda::kFamilyOps) served.insert(std::string(f.op));
  EXPECT_EQ(marked, served);
}

}  // namespace
}  // namespace kvserve::test
#endif
