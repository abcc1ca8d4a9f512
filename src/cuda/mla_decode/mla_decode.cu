// The MLA decode kernel (BatchPagedMlaDecode, absorbed form) on the tensor
// cores: one block per (work item, chunk of 64 query heads), 8 warps. Tiles
// of 32 latent rows [ckv 512 | kpe 64] stream through shared memory with
// cp.async, 3 in flight; the 64 heads' [q_nope | q_pe] rows wait there too
// (72 KB: too large for registers beside O). Warp w serves head group
// g = w % 4 (16 MMA rows) with half h = w / 4 of the work:
//   S:   the dot products over columns [288 h, 288 h + 288) of the 576, for
//        all 32 tokens; the two warps of a group add their halves through
//        shared memory (both then hold the same S, bit for bit);
//   P V: output columns [256 h, 256 h + 256), V being the tile's ckv part.
// mma.sync m16n8k16 with fp32 accumulation, P rounded to the input type as in
// the paged-decode kernel. A request cut into slices merges them in the last
// of its blocks (decode's rule: slice order, independent of finishing order).
#include <cuda_runtime.h>

#include "cuda/common/device_types.cuh"
#include "cuda/common/kernel_attributes.cuh"
#include "cuda/common/mma.cuh"
#include "cuda/mla_decode/mla_decode_params.hpp"
#include "cuda/registry/instantiate.hpp"

namespace kvserve::detail::cuda {
namespace {

constexpr int kWarps = kMlaThreads / 32;
constexpr int kGroups = kMlaHeadsPerBlock / 16;
constexpr int kRowChunks = kMlaRowElems / 8;  // 72 16-byte chunks: 64 of ckv, then 8 of kpe
constexpr int kCkvChunks = kMlaCkvDim / 8;
constexpr int kTileElems = kMlaTileTokens * kMlaRowElems;
constexpr int kCopies = kMlaTileTokens * kRowChunks / kMlaThreads;  // 9 per thread per tile
constexpr int kKStepsPerHalf = kMlaRowElems / 16 / 2;                // 18 of the 36 k-steps of S
constexpr int kSTiles = kMlaTileTokens / 8;                          // n-tiles of S: 4
constexpr int kOTiles = kMlaCkvDim / 2 / 8;                          // n-tiles of a warp's O: 32
static_assert(kWarps == 2 * kGroups, "two warps per head group");
static_assert(kCopies * kMlaThreads == kMlaTileTokens * kRowChunks, "copies divide evenly");
static_assert(kRowChunks % 8 == 0 && kCkvChunks % 8 == 0, "the swizzle keeps ckv and kpe chunks apart");
static_assert(kMlaStages == 3, "two page-id sets cover the prologue");

// The copies of one tile: this thread's chunks c = tid + i * 256 of the
// tile's 32 x 72, token c / 72, chunk c % 72 (from the ckv pool below 64,
// the kpe pool from there). pages[i] is -1 past the slice's end.
using Pages = int[kCopies];

template <class T>
__device__ __forceinline__ void issue_tile(T* tiles, int stage, const MlaDecodeParams& p, const Pages& pages,
                                           int tid, int tile_begin) {
  const T* const ckv = static_cast<const T*>(p.pool.k);
  const T* const kpe = static_cast<const T*>(p.pool.v);
#pragma unroll
  for (int i = 0; i < kCopies; ++i) {
    const int c = tid + i * kMlaThreads, token = c / kRowChunks, chunk = c % kRowChunks;
    const bool valid = pages[i] >= 0;
    const std::int64_t pg = valid ? pages[i] : 0, slot = valid ? p.pool.slot(tile_begin + token) : 0;
    const T* const src = chunk < kCkvChunks
                             ? ckv + pg * p.pool.k_stride_page + slot * p.pool.k_stride_slot + chunk * 8
                             : kpe + pg * p.pool.v_stride_page + slot * p.pool.v_stride_slot + (chunk - kCkvChunks) * 8;
    cp_async16(tiles + stage * kTileElems + token * kMlaRowElems + swizzle(token, chunk) * 8, src, valid);
  }
}

template <DType Q>
__global__ void __launch_bounds__(kMlaThreads, 1) mla_decode_kernel(const __grid_constant__ MlaDecodeParams p) {
  using T = storage_t<Q>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* const tiles = reinterpret_cast<T*>(smem);                   // [stages][32][576], swizzled
  T* const q_rows = tiles + kMlaStages * kTileElems;             // [64][576], swizzled
  float* const s_half = reinterpret_cast<float*>(q_rows + kMlaHeadsPerBlock * kMlaRowElems);  // [8 warps][32 lanes][16]
  int* const flag = reinterpret_cast<int*>(s_half + kWarps * 32 * 16);

  const DecodeWorkItem item = p.items[blockIdx.y];
  if (static_cast<int>(blockIdx.y) >= *p.num_items) return;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int group = warp % kGroups, half = warp / kGroups;
  const int b = item.request, first_head = blockIdx.x * kMlaHeadsPerBlock;
  const int block_heads = min(kMlaHeadsPerBlock, p.num_heads - first_head);
  const bool active = group * 16 < block_heads;  // the same for both warps of a group

  // Page ids of a tile are loaded a tile ahead of its copies, alternating
  // between two register sets (by tile parity, always named statically).
  Pages pages_even, pages_odd;
  auto fetch_into = [&](int tile, Pages& pages) {
    const int tile_begin = item.begin + tile * kMlaTileTokens;
#pragma unroll
    for (int i = 0; i < kCopies; ++i) {
      const int pos = tile_begin + (tid + i * kMlaThreads) / kRowChunks;
      pages[i] = pos < item.end ? p.indices[item.page_base + p.pool.page_index(pos)] : -1;
    }
  };
  auto fetch = [&](int tile) { tile % 2 ? fetch_into(tile, pages_odd) : fetch_into(tile, pages_even); };
  auto issue = [&](int tile) {
    const int stage = tile % kMlaStages, tile_begin = item.begin + tile * kMlaTileTokens;
    tile % 2 ? issue_tile(tiles, stage, p, pages_odd, tid, tile_begin)
             : issue_tile(tiles, stage, p, pages_even, tid, tile_begin);
  };

  // Prologue: the queries and tile 0 in the first copy group, tile 1 in the
  // second, the page ids of tile 2 loaded. Rows past the heads are zeros.
  const int num_tiles = (item.end - item.begin + kMlaTileTokens - 1) / kMlaTileTokens;
  fetch(0);
  fetch(1);
  for (int c = tid; c < kMlaHeadsPerBlock * kRowChunks; c += kMlaThreads) {
    const int row = c / kRowChunks, chunk = c % kRowChunks, head = first_head + row;
    const bool valid = row < block_heads;
    const T* const src =
        chunk < kCkvChunks
            ? static_cast<const T*>(p.q_nope) + b * p.q_nope_stride_b + head * p.q_nope_stride_h + chunk * 8
            : static_cast<const T*>(p.q_pe) + b * p.q_pe_stride_b + head * p.q_pe_stride_h + (chunk - kCkvChunks) * 8;
    cp_async16(q_rows + row * kMlaRowElems + swizzle(row, chunk) * 8, valid ? src : p.q_nope, valid);
  }
  if (num_tiles > 0) issue(0);
  cp_async_commit();
  if (num_tiles > 1) issue(1);
  cp_async_commit();
  fetch(2);

  // This lane's rows of the MMA tiles are lane / 4 and lane / 4 + 8 of the
  // group, its columns (lane % 4) * 2 and + 1 of every n-tile.
  SoftmaxState st[2];
  float o[kOTiles][4] = {};
  const int col = (lane % 4) * 2, m = lane / 8;
  for (int tile = 0; tile < num_tiles; ++tile) {
    cp_async_wait<kMlaStages - 2>();
    __syncthreads();
    if (tile + kMlaStages - 1 < num_tiles) issue(tile + kMlaStages - 1);
    cp_async_commit();
    fetch(tile + kMlaStages);

    const T* const ks = tiles + (tile % kMlaStages) * kTileElems;
    const int tile_tokens = min(kMlaTileTokens, item.end - item.begin - tile * kMlaTileTokens);

    // S [16 heads x 32 tokens] over this warp's half of the 576 columns.
    float s[kSTiles][4] = {};
    if (active) {
      const int q_row = group * 16 + (m % 2) * 8 + lane % 8;
#pragma unroll 6
      for (int kk = half * kKStepsPerHalf; kk < (half + 1) * kKStepsPerHalf; ++kk) {
        unsigned a[4];
        ldmatrix_x4(a, q_rows + q_row * kMlaRowElems + swizzle(q_row, 2 * kk + m / 2) * 8);
#pragma unroll
        for (int pair = 0; pair < kSTiles / 2; ++pair) {
          const int token = pair * 16 + (m / 2) * 8 + lane % 8;
          unsigned kb[4];
          ldmatrix_x4(kb, ks + token * kMlaRowElems + swizzle(token, 2 * kk + m % 2) * 8);
          mma16816<Q>(s[2 * pair], a, kb[0], kb[1]);
          mma16816<Q>(s[2 * pair + 1], a, kb[2], kb[3]);
        }
      }
    }
    // The other half from the partner warp (same lane, same fragment
    // layout); the sum is the same in both warps (addition commutes). A
    // block barrier, not a pair's named one: the sanitizer's racecheck
    // follows it, and the next tile's writes come after the loop's barrier.
    float* const mine = s_half + (warp * 32 + lane) * 16;
    if (active)
#pragma unroll
      for (int j = 0; j < kSTiles; ++j)
        *reinterpret_cast<float4*>(mine + 4 * j) = make_float4(s[j][0], s[j][1], s[j][2], s[j][3]);
    __syncthreads();
    if (!active) continue;
    {
      const float* const theirs = s_half + ((warp ^ kGroups) * 32 + lane) * 16;
#pragma unroll
      for (int j = 0; j < kSTiles; ++j) {
        const float4 t = *reinterpret_cast<const float4*>(theirs + 4 * j);
        s[j][0] += t.x, s[j][1] += t.y, s[j][2] += t.z, s[j][3] += t.w;
      }
    }
    // Logits in base 2, masked past the slice's end; the online-softmax
    // rescale of O.
    float row_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < kSTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float x = j * 8 + col + (e & 1) < tile_tokens ? s[j][e] * p.q_scale : -INFINITY;
        s[j][e] = x;
        row_max[e / 2] = fmaxf(row_max[e / 2], x);
      }
    rescale_row_pair(st, row_max, o);
    // P as A fragments of O += P V: k-step j (tokens 16 j .. 16 j + 15) is
    // S n-tiles 2 j and 2 j + 1.
    unsigned pa[kSTiles / 2][4];
#pragma unroll
    for (int j = 0; j < kSTiles; ++j) {
      const float w0 = st[0].weight(s[j][0]), w1 = st[0].weight(s[j][1]);
      const float w2 = st[1].weight(s[j][2]), w3 = st[1].weight(s[j][3]);
      st[0].d += w0 + w1;
      st[1].d += w2 + w3;
      pa[j / 2][2 * (j % 2)] = pack2<Q>(w0, w1);
      pa[j / 2][2 * (j % 2) + 1] = pack2<Q>(w2, w3);
    }
    // V = the tile's ckv columns [256 half, +256), through ldmatrix.trans:
    // matrices (tokens 0-7, chunk c), (tokens 8-15, chunk c), (tokens 0-7,
    // chunk c + 1), (tokens 8-15, chunk c + 1) serve n-tiles c and c + 1.
#pragma unroll
    for (int j = 0; j < kSTiles / 2; ++j) {
      const int token = j * 16 + (m % 2) * 8 + lane % 8;
#pragma unroll
      for (int n = 0; n < kOTiles; n += 2) {
        unsigned vb[4];
        ldmatrix_x4_trans(vb, ks + token * kMlaRowElems + swizzle(token, half * kOTiles + n + m / 2) * 8);
        mma16816<Q>(o[n], pa[j], vb[0], vb[1]);
        mma16816<Q>(o[n + 1], pa[j], vb[2], vb[3]);
      }
    }
  }
  cp_async_wait<0>();

  // Results: the slice's normalised O and lse, to out when the request is
  // one slice, else to its partial slots.
  const std::int64_t hq = p.num_heads, slot = item.partial_base + item.split;
  if (active) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      st[r].d += __shfl_xor_sync(0xffffffffu, st[r].d, 1);
      st[r].d += __shfl_xor_sync(0xffffffffu, st[r].d, 2);
      const int row = group * 16 + lane / 4 + 8 * r;
      if (row >= block_heads) continue;
      const int head = first_head + row;
      const float inv = st[r].d > 0.f ? 1.f / st[r].d : 0.f;
      const float lse = st[r].lse2() * kLn2;
      const bool write_lse = half == 0 && lane % 4 == 0;
      if (item.num_splits == 1) {
        T* const dst = static_cast<T*>(p.out) + b * p.out_stride_b + head * p.out_stride_h + half * 256 + col;
#pragma unroll
        for (int n = 0; n < kOTiles; ++n)
          *reinterpret_cast<unsigned*>(dst + n * 8) = pack2<Q>(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
        if (p.lse && write_lse) p.lse[b * p.lse_stride_b + head * p.lse_stride_h] = lse;
      } else {
        float* const dst = p.partial_out + (slot * hq + head) * kMlaCkvDim + half * 256 + col;
#pragma unroll
        for (int n = 0; n < kOTiles; ++n)
          *reinterpret_cast<float2*>(dst + n * 8) = make_float2(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
        if (write_lse) p.partial_lse[slot * hq + head] = lse;
      }
    }
  }
  if (item.num_splits == 1) return;
  if (!last_to_arrive(p.split_counters + static_cast<std::int64_t>(b) * p.head_chunks + blockIdx.x,
                      item.num_splits, flag))
    return;
  // The last block merges every slice of the request for its heads, 16
  // slices in flight (the loop's registers are free again).
  for (int c = tid; c < block_heads * kCkvChunks; c += kMlaThreads) {
    const int head = first_head + c / kCkvChunks, e0 = (c % kCkvChunks) * 8;
    float values[8];
    const float lse = merge_states<8, 16>(item.num_splits, p.partial_lse + item.partial_base * hq + head, hq,
                                          p.partial_out + (item.partial_base * hq + head) * kMlaCkvDim + e0,
                                          hq * kMlaCkvDim, values);
    float* const lse_out = p.lse && e0 == 0 ? p.lse + b * p.lse_stride_b + head * p.lse_stride_h : nullptr;
    store_row<Q, 8>(values, lse, static_cast<T*>(p.out) + b * p.out_stride_b + head * p.out_stride_h + e0, lse_out);
  }
}

template <KernelRow R>
struct MlaDecodeRow {
  static int launch(const MlaDecodeParams& p, void* stream) {
    static_assert(R.head_dim == kMlaCkvDim, "the rows are ckv 512 + kpe 64");
    const auto kernel = mla_decode_kernel<R.q>;
    static std::atomic<std::uint64_t> configured_devices{0};
    if (const cudaError_t e = configure_once(kernel, kMlaSmemBytes, configured_devices); e != cudaSuccess) return e;
    const dim3 grid(p.head_chunks, p.max_items);
    kernel<<<grid, kMlaThreads, kMlaSmemBytes, static_cast<cudaStream_t>(stream)>>>(p);
    return cudaGetLastError();
  }
};

}  // namespace

RowLaunchers<MlaDecodeLaunch> mla_decode_launchers() {
  return instantiate_shard<MlaDecodeLaunch, Family::mla_decode, every_row, MlaDecodeRow>();
}

}  // namespace kvserve::detail::cuda
