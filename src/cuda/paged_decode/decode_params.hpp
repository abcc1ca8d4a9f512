// What the paged-decode kernels see: one plain struct of pointers, strides and
// scalars (host-visible, no CUDA types), and the schedule prepare() writes
// into the workspace. Built by decode_plan.cpp, read by decode_kernel.cuh.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/common/paged_pool.hpp"
#include "cuda/registry/registry.hpp"
#include "kvserve/dtype.hpp"

namespace kvserve::detail::cuda {

// A slice [begin, end) of one request's KV tokens, attended by one block per
// (KV head, query-head chunk). A request split into several items writes
// partial states that the last of its blocks to finish merges.
struct DecodeWorkItem {
  std::int32_t request = 0;
  std::int32_t begin = 0, end = 0;  // token positions in the request
  std::int32_t split = 0;           // index of this slice within the request
  std::int32_t num_splits = 1;      // 1: the block writes out / lse directly
  std::int32_t partial_base = 0;    // first partial-state slot of the request
  std::int32_t page_base = 0;       // indptr[request]: the kernel need not read indptr
  std::int32_t pad = 0;             // 32 bytes: two loads per item
};
static_assert(sizeof(DecodeWorkItem) == 32);

// Where a split plan's workspace keeps, after the schedule it stages, the
// split counters and the partial states (lse, then out), each region
// 256-byte aligned; `end` is the workspace size.
struct SplitRegions {
  std::size_t counters = 0, partial_lse = 0, partial_out = 0, end = 0;

  static SplitRegions after(std::size_t staging_bytes, std::size_t counters, std::size_t partial_slots,
                            std::size_t heads, std::size_t dim_v) {
    const auto align256 = [](std::size_t n) { return (n + 255) / 256 * 256; };
    SplitRegions r;
    r.counters = align256(staging_bytes);
    r.partial_lse = align256(r.counters + sizeof(unsigned) * counters);
    r.partial_out = align256(r.partial_lse + sizeof(float) * heads * partial_slots);
    r.end = align256(r.partial_out + sizeof(float) * heads * dim_v * partial_slots);
    return r;
  }
  std::size_t counter_bytes() const { return partial_lse - counters; }
};

// The split schedule in a plan's workspace as both paged decode kernels
// (BatchPagedDecode, BatchPagedMlaDecode) read it: one block per item and
// head chunk; the items of a split request write partial states that the last
// of its blocks merges.
struct SplitSchedule {
  const std::int32_t* num_items = nullptr;  // device scalar
  const DecodeWorkItem* items = nullptr;    // [max_items]
  unsigned* split_counters = nullptr;       // [max_batch * blocks per item], zero between runs
  float* partial_out = nullptr;             // [partial slots, Hq, D_v] normalised
  float* partial_lse = nullptr;             // [partial slots, Hq] natural log
  int max_items = 0;                        // grid.y

  // The schedule in a workspace at `ws`: num_items at 0, the items at
  // items_offset, the rest where `r` says.
  static SplitSchedule in(void* ws, std::size_t items_offset, const SplitRegions& r, int max_items) {
    auto* base = static_cast<char*>(ws);
    return {reinterpret_cast<const std::int32_t*>(base), reinterpret_cast<const DecodeWorkItem*>(base + items_offset),
            reinterpret_cast<unsigned*>(base + r.counters), reinterpret_cast<float*>(base + r.partial_out),
            reinterpret_cast<float*>(base + r.partial_lse), max_items};
  }
};

struct DecodeParams : SplitSchedule {
  // q and out [B, Hq, D]; lse [B, Hq] (null when not asked for). Strides in
  // elements; the last dimension is contiguous.
  const void* q = nullptr;
  std::int64_t q_stride_b = 0, q_stride_h = 0;
  void* out = nullptr;
  std::int64_t out_stride_b = 0, out_stride_h = 0;
  float* lse = nullptr;
  std::int64_t lse_stride_b = 0, lse_stride_h = 0;

  PagedPool pool;
  const std::int32_t* indptr = nullptr;   // [B + 1] page offsets of each request
  const std::int32_t* indices = nullptr;  // page ids

  int num_qo_heads = 0, num_kv_heads = 0;
  int group = 1;          // num_qo_heads / num_kv_heads
  int heads_per_block = 1;  // query heads of one group a block serves (grid.z covers the rest)
  int token_slots = 1;    // thread rows per query head: tokens of a tile processed side by side

  // q is multiplied by q_scale on load; logits are then s (no cap) or
  // cap_log2 * tanh(s) (cap), in base 2 either way.
  float q_scale = 1.f;
  float cap_log2 = 0.f;  // 0: no soft-cap

  const float* k_scale = nullptr;  // [Hkv] (fp8 pools, in the workspace), else null
  const float* v_scale = nullptr;  // [Hkv]
  int head_chunks = 1;             // grid.x = num_kv_heads * head_chunks
};

// Launches the decode kernel for one compiled configuration on `stream`
// (a cudaStream_t); returns the cudaError_t of the launch as an int so that
// this header stays free of CUDA types.
using DecodeLaunch = int (*)(const DecodeParams&, void* stream);
// The launchers of the paged-decode rows over one pool dtype (decode_<kv>.cu).
RowLaunchers<DecodeLaunch> decode_launchers_f16();
RowLaunchers<DecodeLaunch> decode_launchers_bf16();
RowLaunchers<DecodeLaunch> decode_launchers_f32();
RowLaunchers<DecodeLaunch> decode_launchers_fp8_e4m3();
RowLaunchers<DecodeLaunch> decode_launchers_fp8_e5m2();

// Blocks of the CUDA-core kernel (256 threads, 48 KB of shared memory): 4
// fit an SM (192 KB of its 227 KB, 1024 of its 2048 threads, <= 64 registers).
inline constexpr int kDecodeBlocksPerSm = 4;

// Whether a configuration runs on the tensor cores: f16 and bf16 pools with
// queries of the same type (mma.sync m16n8k16, fp32 accumulation); f32 and
// fp8 pools run on the CUDA cores.
constexpr bool decode_uses_mma(DType q, DType kv) { return q == kv && (kv == DType::f16 || kv == DType::bf16); }

// The block shape of a decode configuration, shared by the host (to size the
// grid and the split) and the kernels.
//
// CUDA cores: every lane holds `elems` elements of a head (one 16-byte load,
// two for f32 at d=256 so a head fits a warp), `lanes` = head_dim / elems
// lanes hold one head, and 256 threads form `rows` rows of them. A stage
// holds 8 KB of K and 8 KB of V (bf16 d=128: 32 tokens); 3 stages are 48 KB,
// the most a block gets without opting in.
//
// Tensor cores: 4 warps; each scores 16 tokens of a 64-token tile against up
// to 16 query heads of the group (the MMA's 16 rows) and accumulates P V for
// them. At d=128 a stage is 16 KB of K and 16 KB of V; 3 stages are 96 KB,
// so 2 blocks share an SM and keep 128 KB of loads in flight on it.
struct DecodeShape {
  bool mma = false;
  int threads = 0;        // per block
  int elems = 0;          // CUDA cores: elements of a head per lane
  int lanes = 0;          // CUDA cores: lanes per head, a power of two <= 32
  int rows = 0;           // query heads a block can serve at once (thread rows / MMA rows)
  int tile_tokens = 0;    // tokens per shared-memory stage
  int stages = 0;
  int blocks_per_sm = 0;  // resident blocks an SM holds
  int smem_bytes = 0;     // dynamic shared memory per block
};
constexpr DecodeShape decode_shape(DType q, DType kv, int head_dim) {
  DecodeShape s;
  const int kv_bytes = static_cast<int>(size_of(kv));
  if (decode_uses_mma(q, kv)) {
    s.mma = true;
    s.threads = 128;
    s.rows = 16;
    s.tile_tokens = 64;
    s.stages = head_dim > 128 ? 2 : 3;
    s.smem_bytes = 2 * s.stages * s.tile_tokens * head_dim * kv_bytes;
    s.blocks_per_sm = (227 * 1024) / (s.smem_bytes + 1024) < 4 ? (227 * 1024) / (s.smem_bytes + 1024) : 4;
    return s;
  }
  s.threads = 256;
  const int per_load = 16 / kv_bytes;
  s.elems = per_load > head_dim / 32 ? per_load : head_dim / 32;
  s.lanes = head_dim / s.elems;
  s.rows = s.threads / s.lanes;
  s.tile_tokens = 8192 / (head_dim * kv_bytes);
  s.stages = 3;
  s.smem_bytes = 2 * s.stages * s.tile_tokens * head_dim * kv_bytes;
  s.blocks_per_sm = kDecodeBlocksPerSm;
  return s;
}

}  // namespace kvserve::detail::cuda
