// SingleDecode on CUDA: selection from the kernel table, the split chosen in
// run() from the shape (host arithmetic, no device call), and the launch.
//
// Split: blocks of kSingleDecodeWarps warps, each warp one partial state.
// A row gets enough splits that the grid fills the GPU (kTargetBlocks) but
// no split shorter than kMinSplitTokens keys, so a long cache with a small
// batch still spreads over every SM and a large batch runs one split per row.
// Then B x H_kv x splits < kTargetBlocks + B x H_kv, which sizes the
// workspace from max_batch alone.
#include <algorithm>
#include <cmath>
#include <string>

#include "core/check.hpp"
#include "cuda/common/runtime.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/kernel_table.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

constexpr const char* kOp = SingleDecode::kName;
constexpr std::int64_t kTargetBlocks = 512;    // about 4 blocks per SM on an H100
constexpr std::int64_t kMinSplitTokens = 256;  // 64 keys per warp

std::int64_t splits_for(std::int64_t batch, int num_kv_heads, std::int64_t max_len) {
  const std::int64_t by_length = (max_len + kMinSplitTokens - 1) / kMinSplitTokens;
  const std::int64_t by_occupancy = (kTargetBlocks + batch * num_kv_heads - 1) / (batch * num_kv_heads);
  return std::max<std::int64_t>(1, std::min(by_length, by_occupancy));
}

// Partial states the workspace holds: (blocks) x warps x group, per query head row.
std::int64_t state_capacity(const SingleDecodeDesc& d) {
  const std::int64_t blocks = kTargetBlocks + std::int64_t{d.max_batch} * d.num_kv_heads;
  return blocks * kSingleDecodeWarps * (d.num_qo_heads / d.num_kv_heads);
}

std::size_t partial_out_bytes(const SingleDecodeDesc& d) {
  return static_cast<std::size_t>(state_capacity(d)) * d.head_dim * sizeof(float);
}

SingleDecodeLaunch launch_of(const PlanState<SingleDecode>& p) {
  return *static_cast<const SingleDecodeLaunch*>(p.backend_resources.get());
}

Status keep_launcher(PlanState<SingleDecode>& p) {
  auto entry = find_single_decode_kernel(kOp, p.desc.dtype, p.desc.head_dim);
  if (!entry) return entry.status();
  p.backend_resources = std::make_shared<SingleDecodeLaunch>(entry->launch);
  return Status::ok();
}

Status run_single_decode(const PlanState<SingleDecode>& p, const SingleDecodeArgs& a, Workspace ws, Stream stream) {
  const auto& d = p.desc;
  const std::int64_t batch = a.q.shape[0];
  if (batch == 0) return Status::ok();
  KVSERVE_TRY(check_16_byte_rows(kOp, "q", a.q, 2));
  KVSERVE_TRY(check_16_byte_rows(kOp, "k", a.k, 3));
  KVSERVE_TRY(check_16_byte_rows(kOp, "v", a.v, 3));
  KVSERVE_TRY(check_16_byte_rows(kOp, "out", a.out, 2));

  SingleDecodeParams prm;
  prm.batch = batch;
  prm.num_qo_heads = d.num_qo_heads, prm.num_kv_heads = d.num_kv_heads, prm.group = d.num_qo_heads / d.num_kv_heads;
  prm.max_len = a.k.shape[2];
  prm.num_states = static_cast<int>(splits_for(batch, d.num_kv_heads, prm.max_len)) * kSingleDecodeWarps;
  prm.q = a.q.data;
  prm.q_stride_b = a.q.strides[0], prm.q_stride_h = a.q.strides[1];
  prm.k = a.k.data, prm.v = a.v.data;
  prm.k_stride_b = a.k.strides[0], prm.k_stride_h = a.k.strides[1], prm.k_stride_l = a.k.strides[2];
  prm.v_stride_b = a.v.strides[0], prm.v_stride_h = a.v.strides[1], prm.v_stride_l = a.v.strides[2];
  if (a.kv_len.defined()) prm.kv_len = a.kv_len.ptr<const std::int32_t>();
  const double sm_scale = d.attn.sm_scale ? *d.attn.sm_scale : 1.0 / std::sqrt(double(d.head_dim));
  const double cap = d.attn.logits_soft_cap;
  // Without a cap logits are taken in base 2 directly (q.k * sm_scale * log2 e);
  // with one, tanh sees s / cap and the cap carries the log2 e.
  prm.q_scale = static_cast<float>(cap > 0 ? sm_scale / cap : sm_scale * 1.4426950408889634);
  prm.cap_log2 = static_cast<float>(cap > 0 ? cap * 1.4426950408889634 : 0.0);
  prm.window_left = d.attn.window_left;
  prm.partial_out = static_cast<float*>(ws.data);
  prm.partial_lse = reinterpret_cast<float*>(static_cast<char*>(ws.data) + partial_out_bytes(d));
  prm.out = a.out.data;
  prm.out_stride_b = a.out.strides[0], prm.out_stride_h = a.out.strides[1];
  if (a.lse.defined()) {
    prm.lse = a.lse.ptr<float>();
    prm.lse_stride_b = a.lse.strides[0], prm.lse_stride_h = a.lse.strides[1];
  }

  DeviceScope scope(p.device);
  KVSERVE_TRY(cuda_status(scope.error(), kOp, "selecting " + p.device.to_string()));
  return cuda_status(static_cast<cudaError_t>(launch_of(p)(prm, stream.handle)), kOp, "kernel launch");
}

}  // namespace
}  // namespace cuda

template <>
Result<Kernel<SingleDecode>> cuda_kernel<SingleDecode>(const SingleDecodeDesc& d, Device device) {
  constexpr const char* op = SingleDecode::kName;
  auto entry = cuda::find_single_decode_kernel(op, d.dtype, d.head_dim);
  if (!entry) return entry.status();
  if (d.kv_split_tokens > 0)
    return Status::unsupported(std::string(op) + ": no CUDA kernel with a fixed split (kv_split_tokens " +
                               std::to_string(d.kv_split_tokens) + "); the built kernel splits by the shape");
  if (d.max_batch > 65535)  // grid.z
    return Status::unsupported(std::string(op) + ": max_batch " + std::to_string(d.max_batch) +
                               " is more than the 65535 rows one CUDA launch holds");
  auto facts = cuda::device_facts(device);
  if (!facts) return facts.status();
  Kernel<SingleDecode> k;
  k.info.backend = Backend::cuda;
  k.info.arch = facts->arch;
  k.info.op = op;
  k.info.config = "dtype=" + std::string(name_of(d.dtype)) + " d=" + std::to_string(d.head_dim) +
                  " warps=" + std::to_string(cuda::kSingleDecodeWarps) + " split=auto:min" +
                  std::to_string(cuda::kMinSplitTokens);
  // fp32 products and sums in a fixed order for a given shape; the split
  // count depends on the batch size, so a row's bits depend on the batch.
  k.info.precision = Precision{DType::f32, DType::f32, /*deterministic=*/true, /*batch_invariant=*/false};
  k.workspace_bytes = cuda::partial_out_bytes(d) + static_cast<std::size_t>(cuda::state_capacity(d)) * sizeof(float);
  k.run = cuda::run_single_decode;
  k.create_resources = cuda::keep_launcher;
  return k;
}

}  // namespace kvserve::detail
