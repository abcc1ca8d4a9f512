// SingleDecode on CUDA: the row for (dtype, head_dim), the split chosen in
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
#include "cuda/common/cuda_plan.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/single_decode/single_decode_params.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

const LaunchTable<SingleDecodeLaunch> kSingleDecodeLaunchers{
    single_decode_launchers_f16(), single_decode_launchers_bf16(), single_decode_launchers_f32()};

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

struct SingleDecodeTraits {
  using Op = SingleDecode;
  struct Selected {
    SingleDecodeLaunch launch;
    std::size_t partial_out_bytes, workspace_bytes;
  };

  static Result<Selected> select(const SingleDecodeDesc& d, const DeviceFacts&) {
    auto row = find_row(Op::kName, Family::single_decode, {d.dtype, d.dtype, d.head_dim});
    if (!row) return row.status();
    if (d.kv_split_tokens > 0)
      return no_kernel(Op::kName, "a fixed split (kv_split_tokens " + std::to_string(d.kv_split_tokens) + ")",
                       "a split by the shape");
    if (d.max_batch > 65535)  // grid.z
      return no_kernel(Op::kName, "max_batch " + std::to_string(d.max_batch), "up to the 65535 rows one launch holds");
    const std::size_t states = static_cast<std::size_t>(state_capacity(d));
    const std::size_t partial_out = states * d.head_dim * sizeof(float);
    return Selected{kSingleDecodeLaunchers[*row], partial_out, partial_out + states * sizeof(float)};
  }
  static std::string config(const SingleDecodeDesc& d, const Selected&) {
    return "dtype=" + std::string(name_of(d.dtype)) + " d=" + std::to_string(d.head_dim) +
           " warps=" + std::to_string(kSingleDecodeWarps) + " split=auto:min" + std::to_string(kMinSplitTokens);
  }
  // fp32 products and sums in a fixed order for a given shape; the split
  // count depends on the batch size, so a row's bits depend on the batch.
  static Precision precision(const SingleDecodeDesc&) {
    return {DType::f32, DType::f32, /*deterministic=*/true, /*batch_invariant=*/false};
  }
  static std::size_t workspace_bytes(const Selected& s) { return s.workspace_bytes; }

  static Status run(const Selected& s, const SingleDecodeDesc& d, Device device, const SingleDecodeArgs& a,
                    Workspace ws, Stream stream) {
    const std::int64_t batch = a.q.shape[0];
    if (batch == 0) return Status::ok();
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "q", a.q, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "k", a.k, 3));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "v", a.v, 3));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "out", a.out, 2));

    SingleDecodeParams prm;
    prm.batch = batch;
    prm.num_qo_heads = d.num_qo_heads, prm.num_kv_heads = d.num_kv_heads;
    prm.group = d.num_qo_heads / d.num_kv_heads;
    prm.max_len = a.k.shape[2];
    prm.num_states = static_cast<int>(splits_for(batch, d.num_kv_heads, prm.max_len)) * kSingleDecodeWarps;
    prm.q = a.q.data;
    prm.q_stride_b = a.q.strides[0], prm.q_stride_h = a.q.strides[1];
    prm.k = a.k.data, prm.v = a.v.data;
    prm.k_stride_b = a.k.strides[0], prm.k_stride_h = a.k.strides[1], prm.k_stride_l = a.k.strides[2];
    prm.v_stride_b = a.v.strides[0], prm.v_stride_h = a.v.strides[1], prm.v_stride_l = a.v.strides[2];
    if (a.kv_len.defined()) prm.kv_len = a.kv_len.ptr<const std::int32_t>();
    const LogitScales scales = logit_scales(d.attn, d.head_dim);
    prm.q_scale = scales.q_scale, prm.cap_log2 = scales.cap_log2;
    prm.window_left = d.attn.window_left;
    prm.partial_out = static_cast<float*>(ws.data);
    prm.partial_lse = reinterpret_cast<float*>(static_cast<char*>(ws.data) + s.partial_out_bytes);
    prm.out = a.out.data;
    prm.out_stride_b = a.out.strides[0], prm.out_stride_h = a.out.strides[1];
    if (a.lse.defined()) {
      prm.lse = a.lse.ptr<float>();
      prm.lse_stride_b = a.lse.strides[0], prm.lse_stride_h = a.lse.strides[1];
    }
    return launch_on(device, Op::kName, [&] { return s.launch(prm, stream.handle); });
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(SingleDecode, SingleDecodeTraits)

}  // namespace kvserve::detail
