// BatchPagedDecode on CUDA: the row for (q, kv, head_dim), the workspace
// schedule written by prepare(), and the launch in run().
#include <memory>
#include <string>

#include "core/check.hpp"
#include "core/paged_kv_rules.hpp"
#include "cuda/common/cuda_plan.hpp"
#include "cuda/common/staging.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/paged_decode/decode_schedule.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

const LaunchTable<DecodeLaunch> kDecodeLaunchers{decode_launchers_f16(), decode_launchers_bf16(),
                                                 decode_launchers_f32(), decode_launchers_fp8_e4m3(),
                                                 decode_launchers_fp8_e5m2()};

struct BatchPagedDecodeTraits {
  using Op = BatchPagedDecode;
  struct Selected {
    DecodeLaunch launch;
    DecodeSizing sizing;
    std::unique_ptr<PinnedStaging> staging;  // made by create()
  };

  static Result<Selected> select(const BatchPagedDecodeDesc& d, const DeviceFacts& facts) {
    auto row = find_row(Op::kName, Family::paged_decode, {d.q_dtype, d.kv.dtype, d.kv.head_dim});
    if (!row) return row.status();
    Selected s{kDecodeLaunchers[*row], decode_sizing(d, facts.sm_count), nullptr};
    KVSERVE_TRY(check_item_grid(Op::kName, d.max_batch, s.sizing.max_items));
    return s;
  }
  static std::string config(const BatchPagedDecodeDesc& d, const Selected& s) {
    const DecodeSizing& z = s.sizing;
    return paged_config(d.q_dtype, d.kv) + " threads=" + std::to_string(z.shape.threads) +
           " tile=" + std::to_string(z.shape.tile_tokens) + "x" + std::to_string(z.shape.stages) +
           " heads_per_block=" + std::to_string(z.heads_per_block) +
           (z.split_tokens > 0 ? " split=fixed:" + std::to_string(z.split_tokens) : " split=auto");
  }
  // fp32 products and sums; the schedule and the merge order depend only on
  // the lengths (so runs repeat bit for bit), and with a fixed split only on
  // the request's own length.
  static Precision precision(const BatchPagedDecodeDesc& d) {
    return {DType::f32, DType::f32, /*deterministic=*/true, /*batch_invariant=*/d.kv_split_tokens > 0};
  }
  static std::size_t workspace_bytes(const Selected& s) { return s.sizing.regions.end; }

  static Status create(Selected& s, const BatchPagedDecodeDesc&, Device device) { return create_staging(s, device); }

  static Status prepare(Selected& s, const BatchPagedDecodeDesc& d, Device device, const PagedKvLengths& host,
                        Workspace ws, Stream stream) {
    const DecodeSizing& z = s.sizing;
    return stage_schedule(
        Op::kName, device, *s.staging, ws, stream,
        [&](void* staging) -> Result<std::size_t> {
          return z.items_offset + sizeof(DecodeWorkItem) * build_decode_schedule(z, d, host, staging);
        },
        z.regions.counters, z.regions.counter_bytes());
  }

  static Status run(const Selected& s, const BatchPagedDecodeDesc& d, Device device, const BatchPagedDecodeArgs& a,
                    Workspace ws, Stream stream) {
    const DecodeSizing& z = s.sizing;
    if (a.q.shape[0] == 0) return Status::ok();
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "q", a.q, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "out", a.out, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "kv.k_pages", a.kv.k_pages, 3));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "kv.v_pages", a.kv.v_pages, 3));

    DecodeParams prm;
    prm.q = a.q.data;
    prm.q_stride_b = a.q.strides[0], prm.q_stride_h = a.q.strides[1];
    prm.out = a.out.data;
    prm.out_stride_b = a.out.strides[0], prm.out_stride_h = a.out.strides[1];
    if (a.lse.defined()) {
      prm.lse = a.lse.ptr<float>();
      prm.lse_stride_b = a.lse.strides[0], prm.lse_stride_h = a.lse.strides[1];
    }
    prm.pool = paged_pool(d.kv, a.kv.k_pages, a.kv.v_pages);
    prm.indptr = a.kv.indptr.ptr<const std::int32_t>();
    prm.indices = a.kv.indices.ptr<const std::int32_t>();
    prm.num_qo_heads = z.num_qo_heads, prm.num_kv_heads = z.num_kv_heads;
    prm.group = z.group, prm.heads_per_block = z.heads_per_block, prm.token_slots = z.token_slots;
    const LogitScales scales = logit_scales(d.attn, d.kv.head_dim);
    prm.q_scale = scales.q_scale, prm.cap_log2 = scales.cap_log2;

    auto* base = static_cast<char*>(ws.data);
    static_cast<SplitSchedule&>(prm) = SplitSchedule::in(ws.data, z.items_offset, z.regions, z.max_items);
    if (is_fp8(d.kv.dtype)) {
      prm.k_scale = reinterpret_cast<const float*>(base + z.scales_offset);
      prm.v_scale = prm.k_scale + z.num_kv_heads;
    }
    prm.head_chunks = z.head_chunks;
    return launch_on(device, Op::kName, [&] { return s.launch(prm, stream.handle); });
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(BatchPagedDecode, BatchPagedDecodeTraits)

}  // namespace kvserve::detail
