// BatchPagedMlaDecode on CUDA: the row for the dtype (ckv 512 + kpe 64), the
// split schedule prepare() writes into the workspace (paged decode's rule,
// decode_schedule.hpp), and the launch in run().
#include <algorithm>
#include <memory>
#include <string>

#include "core/check.hpp"
#include "core/paged_kv_rules.hpp"
#include "cuda/common/cuda_plan.hpp"
#include "cuda/common/staging.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/mla_decode/mla_decode_params.hpp"
#include "cuda/paged_decode/decode_schedule.hpp"
#include "kvserve/mla.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

const LaunchTable<MlaDecodeLaunch> kMlaDecodeLaunchers{mla_decode_launchers()};

// Fixed split: the partial states kept for the whole batch, i.e. at most
// max(2, 256 / max_batch) slices per request. A partial state of 128 heads
// is 256 KB (paged decode's 1024 would be 256 MB here).
constexpr int kMlaFixedSplitPartials = 256;

// Everything the plan derives from (desc, device). Workspace:
// [num_items] | items | split counters | partial lse | partial out (SplitRegions).
struct MlaDecodeSizing {
  SplitPolicy split;
  int head_chunks = 1, max_items = 0, partial_slots = 0;
  std::size_t items_offset = 256, staging_bytes = 0;
  SplitRegions regions;  // regions.end: the workspace size
};

MlaDecodeSizing mla_decode_sizing(const BatchPagedMlaDecodeDesc& d, int sm_count) {
  MlaDecodeSizing z;
  z.head_chunks = (d.num_heads + kMlaHeadsPerBlock - 1) / kMlaHeadsPerBlock;
  z.split.tile_tokens = kMlaTileTokens;
  z.split.split_tokens = d.kv_split_tokens;
  if (d.kv_split_tokens > 0) {
    z.split.max_splits = std::max(2, (kMlaFixedSplitPartials + d.max_batch - 1) / d.max_batch);
    z.max_items = d.max_batch * z.split.max_splits;
    z.partial_slots = z.max_items;
  } else {
    // One wave: a block per SM (196 KB of shared memory each), e.g. 132
    // SMs over 2 head chunks at 128 heads = 66 slices for the batch; the
    // split requests take at most target_items partial slots.
    z.split.target_items = std::max(1, sm_count / z.head_chunks);
    z.max_items = d.max_batch + z.split.target_items;
    z.partial_slots = z.split.target_items;
  }
  z.staging_bytes = z.items_offset + sizeof(DecodeWorkItem) * static_cast<std::size_t>(z.max_items);
  z.regions = SplitRegions::after(z.staging_bytes, static_cast<std::size_t>(d.max_batch) * z.head_chunks,
                                  static_cast<std::size_t>(z.partial_slots), static_cast<std::size_t>(d.num_heads),
                                  kMlaCkvDim);
  return z;
}

struct BatchPagedMlaDecodeTraits {
  using Op = BatchPagedMlaDecode;
  struct Selected {
    MlaDecodeLaunch launch;
    MlaDecodeSizing sizing;
    std::unique_ptr<PinnedStaging> staging;  // made by create()
  };

  static Result<Selected> select(const BatchPagedMlaDecodeDesc& d, const DeviceFacts& facts) {
    auto row = find_row(Op::kName, Family::mla_decode, {d.cache.dtype, d.cache.dtype, d.cache.ckv_dim});
    if (!row) return row.status();
    if (d.cache.kpe_dim != kMlaKpeDim)
      return no_kernel(Op::kName, "cache.kpe_dim " + std::to_string(d.cache.kpe_dim),
                       "kpe_dim " + std::to_string(kMlaKpeDim));
    Selected s{kMlaDecodeLaunchers[*row], mla_decode_sizing(d, facts.sm_count), nullptr};
    KVSERVE_TRY(check_item_grid(Op::kName, d.max_batch, s.sizing.max_items));
    return s;
  }
  static std::string config(const BatchPagedMlaDecodeDesc& d, const Selected& s) {
    return "dtype=" + std::string(name_of(d.cache.dtype)) + " heads=" + std::to_string(d.num_heads) +
           " ckv=" + std::to_string(d.cache.ckv_dim) + " kpe=" + std::to_string(d.cache.kpe_dim) +
           " threads=" + std::to_string(kMlaThreads) + " tile=" + std::to_string(kMlaTileTokens) + "x" +
           std::to_string(kMlaStages) + " heads_per_block=" + std::to_string(kMlaHeadsPerBlock) +
           (s.sizing.split.split_tokens > 0 ? " split=fixed:" + std::to_string(s.sizing.split.split_tokens)
                                            : " split=auto");
  }
  // As paged decode: fp32 products and sums, a schedule and merge order that
  // depend only on the lengths (and with a fixed split only on the request's).
  static Precision precision(const BatchPagedMlaDecodeDesc& d) {
    return {DType::f32, DType::f32, /*deterministic=*/true, /*batch_invariant=*/d.kv_split_tokens > 0};
  }
  static std::size_t workspace_bytes(const Selected& s) { return s.sizing.regions.end; }

  static Status create(Selected& s, const BatchPagedMlaDecodeDesc&, Device device) {
    return create_staging(s, device);
  }

  static Status prepare(Selected& s, const BatchPagedMlaDecodeDesc& d, Device device, const PagedKvLengths& host,
                        Workspace ws, Stream stream) {
    const MlaDecodeSizing& z = s.sizing;
    return stage_schedule(
        Op::kName, device, *s.staging, ws, stream,
        [&](void* staging) -> Result<std::size_t> {
          auto* bytes = static_cast<unsigned char*>(staging);
          auto* items = reinterpret_cast<DecodeWorkItem*>(bytes + z.items_offset);
          int partials = 0;
          const int n = build_work_items(z.split, host, d.cache.page_size, /*window_left=*/-1, items, &partials);
          if (partials > z.partial_slots)  // the bound the sizing relies on (decode_schedule.hpp)
            return Status::internal(std::string(Op::kName) + ": the schedule takes " + std::to_string(partials) +
                                    " partial slots, " + std::to_string(z.partial_slots) + " sized");
          std::fill(bytes, bytes + z.items_offset, 0);
          std::copy_n(reinterpret_cast<const unsigned char*>(&n), sizeof n, bytes);
          return z.items_offset + sizeof(DecodeWorkItem) * n;
        },
        z.regions.counters, z.regions.counter_bytes());
  }

  static Status run(const Selected& s, const BatchPagedMlaDecodeDesc& d, Device device,
                    const BatchPagedMlaDecodeArgs& a, Workspace ws, Stream stream) {
    const MlaDecodeSizing& z = s.sizing;
    if (a.q_nope.shape[0] == 0) return Status::ok();
    for (const auto& [name, t] : {std::pair{"q_nope", &a.q_nope}, {"q_pe", &a.q_pe}, {"out", &a.out}})
      KVSERVE_TRY(check_16_byte_rows(Op::kName, name, *t, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "cache.ckv_pages", a.cache.ckv_pages, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "cache.kpe_pages", a.cache.kpe_pages, 2));

    MlaDecodeParams p;
    p.q_nope = a.q_nope.data, p.q_nope_stride_b = a.q_nope.strides[0], p.q_nope_stride_h = a.q_nope.strides[1];
    p.q_pe = a.q_pe.data, p.q_pe_stride_b = a.q_pe.strides[0], p.q_pe_stride_h = a.q_pe.strides[1];
    p.out = a.out.data, p.out_stride_b = a.out.strides[0], p.out_stride_h = a.out.strides[1];
    if (a.lse.defined()) p.lse = a.lse.ptr<float>(), p.lse_stride_b = a.lse.strides[0], p.lse_stride_h = a.lse.strides[1];
    p.pool.k = a.cache.ckv_pages.data;
    p.pool.k_stride_page = a.cache.ckv_pages.strides[0], p.pool.k_stride_slot = a.cache.ckv_pages.strides[1];
    p.pool.v = a.cache.kpe_pages.data;
    p.pool.v_stride_page = a.cache.kpe_pages.strides[0], p.pool.v_stride_slot = a.cache.kpe_pages.strides[1];
    p.pool.set_page_size(d.cache.page_size);
    p.indices = a.cache.indices.ptr<const std::int32_t>();
    p.num_heads = d.num_heads;
    p.head_chunks = z.head_chunks;
    p.q_scale = d.sm_scale * 1.4426950408889634f;  // log2 e: the kernel's exp2
    static_cast<SplitSchedule&>(p) = SplitSchedule::in(ws.data, z.items_offset, z.regions, z.max_items);
    return launch_on(device, Op::kName, [&] { return s.launch(p, stream.handle); });
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(BatchPagedMlaDecode, BatchPagedMlaDecodeTraits)

}  // namespace kvserve::detail
