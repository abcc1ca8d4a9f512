// CUDA kernels for TokenPenalty. From counts: 16-byte count loads, four per
// thread in flight, touching only the logits of seen tokens. From token ids:
// one block per row counts its history in a shared-memory hash table
// (integer atomics, so the counts do not depend on the order threads arrive
// in), then penalises each distinct id once. Either way a thread reads all
// the seen logits it owns before it writes any: the reads go out together,
// one device-memory latency per thread rather than one per seen token.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/sampling/sampling_params.hpp"

namespace kvserve::detail::cuda {
namespace {

struct Penalties {
  float repetition, frequency, presence;
};

__device__ __forceinline__ Penalties row_penalties(const PenaltyParams& p, int b) {
  const auto value = [b](const RowParam<float>& r) { return r.rows ? r.rows[b] : r.scalar; };
  return {value(p.repetition), value(p.frequency), value(p.presence)};
}

// The documented order, each step one IEEE f32 operation (the _rn intrinsics
// are never contracted into an FMA).
__device__ __forceinline__ float penalised(float x, std::int32_t count, const Penalties& p) {
  x = x > 0.f ? __fdiv_rn(x, p.repetition) : __fmul_rn(x, p.repetition);
  x = fmaf(-p.frequency, static_cast<float>(count), x);
  return __fsub_rn(x, p.presence);
}

constexpr int kCountThreads = 256;
constexpr int kCountVectors = 4;  // 16-byte count loads in flight per thread
constexpr int kCountsPerBlock = kCountThreads * kCountVectors * 4;

// Counts are read as 16-byte vectors from the row's first 16-byte boundary
// (rows need not be aligned: vocab and strides are free); the up to 3 tokens
// before it and after the last whole vector are handled by block 0 of the row.
__global__ void __launch_bounds__(kCountThreads) penalty_from_counts_kernel(const PenaltyParams p) {
  const int b = static_cast<int>(blockIdx.x);
  const std::int32_t* counts = p.counts + b * p.counts_stride;
  float* logits = p.logits + b * p.logits_stride;
  const auto misaligned = static_cast<int>((reinterpret_cast<std::uintptr_t>(counts) & 15u) / 4u);
  const int head = min(p.vocab, (4 - misaligned) & 3);
  const int vectors = (p.vocab - head) / 4, tail = p.vocab - head - 4 * vectors;
  const int4* body = reinterpret_cast<const int4*>(counts + head);
  const Penalties pen = row_penalties(p, b);
  const int first = static_cast<int>(blockIdx.y) * kCountThreads * kCountVectors + static_cast<int>(threadIdx.x);
  int4 c[kCountVectors];
#pragma unroll
  for (int k = 0; k < kCountVectors; ++k) {
    const int v = first + k * kCountThreads;
    c[k] = v < vectors ? body[v] : int4{0, 0, 0, 0};
  }
  std::int32_t count[kCountVectors * 4];
  float x[kCountVectors * 4];
#pragma unroll
  for (int k = 0; k < kCountVectors; ++k) {
    count[4 * k] = c[k].x, count[4 * k + 1] = c[k].y, count[4 * k + 2] = c[k].z, count[4 * k + 3] = c[k].w;
  }
  const auto token = [&](int n) { return head + 4 * (first + n / 4 * kCountThreads) + n % 4; };
#pragma unroll
  for (int n = 0; n < kCountVectors * 4; ++n) x[n] = count[n] > 0 ? logits[token(n)] : 0.f;
#pragma unroll
  for (int n = 0; n < kCountVectors * 4; ++n)
    if (count[n] > 0) logits[token(n)] = penalised(x[n], count[n], pen);
  if (blockIdx.y == 0 && static_cast<int>(threadIdx.x) < head + tail) {
    const int j = static_cast<int>(threadIdx.x) < head ? static_cast<int>(threadIdx.x)
                                                       : p.vocab - tail + (static_cast<int>(threadIdx.x) - head);
    if (counts[j] > 0) logits[j] = penalised(logits[j], counts[j], pen);
  }
}

constexpr int kIdsThreads = 512;
constexpr int kIdsInFlight = 4;  // history ids loaded per thread before they are counted
// Open addressing with linear probing: a history of up to kTableSlots - 1 ids
// always finds a free slot; 32 KB of shared memory.
constexpr int kTableSlots = 4096;
constexpr std::uint32_t kEmptySlot = 0xffffffffu;

__device__ __forceinline__ std::uint32_t slot_of(std::uint32_t id) {
  return (id * 2654435761u) >> (32 - 12);  // Knuth's multiplicative hash, top 12 bits
}
static_assert(kTableSlots == 1 << 12);

// One block per row: two per SM are enough for a batch of 256 on an H100, so
// ptxas may use 64 registers (it spilled at the 32 it chose for four).
__global__ void __launch_bounds__(kIdsThreads, 2) penalty_from_ids_kernel(const PenaltyParams p) {
  __shared__ std::uint32_t keys[kTableSlots];
  __shared__ std::int32_t counts[kTableSlots];
  const int b = static_cast<int>(blockIdx.x);
  const std::int32_t* ids = p.token_ids + b * p.ids_stride_b;
  float* logits = p.logits + b * p.logits_stride;
  const Penalties pen = row_penalties(p, b);
  const auto id_at = [&](std::int64_t i) { return ids[i * p.ids_stride_l]; };
  const auto valid = [&](std::int32_t id) { return id >= 0 && id < p.vocab; };

  if (p.history_len >= kTableSlots) {
    // Longer histories than the table holds: each id's first occurrence
    // counts the rest directly (quadratic in the history, but exact).
    for (std::int64_t i = threadIdx.x; i < p.history_len; i += kIdsThreads) {
      const std::int32_t id = id_at(i);
      if (!valid(id)) continue;
      bool first = true;
      for (std::int64_t k = 0; k < i && first; ++k) first = id_at(k) != id;
      if (!first) continue;
      std::int32_t count = 1;
      for (std::int64_t k = i + 1; k < p.history_len; ++k) count += id_at(k) == id;
      logits[id] = penalised(logits[id], count, pen);
    }
    return;
  }
  for (int i = threadIdx.x; i < kTableSlots; i += kIdsThreads) keys[i] = kEmptySlot, counts[i] = 0;
  __syncthreads();
  for (std::int64_t first = threadIdx.x; first < p.history_len; first += kIdsThreads * kIdsInFlight) {
    std::int32_t id[kIdsInFlight];
#pragma unroll
    for (int k = 0; k < kIdsInFlight; ++k) {
      const std::int64_t i = first + k * kIdsThreads;
      id[k] = i < p.history_len ? id_at(i) : -1;
    }
#pragma unroll
    for (int k = 0; k < kIdsInFlight; ++k) {
      if (!valid(id[k])) continue;
      const auto key = static_cast<std::uint32_t>(id[k]);
      for (std::uint32_t slot = slot_of(key);; slot = (slot + 1) % kTableSlots) {
        const std::uint32_t held = atomicCAS(&keys[slot], kEmptySlot, key);
        if (held == kEmptySlot || held == key) {
          atomicAdd(&counts[slot], 1);
          break;
        }
      }
    }
  }
  __syncthreads();
  constexpr int kSlotsPerThread = kTableSlots / kIdsThreads;
  static_assert(kSlotsPerThread * kIdsThreads == kTableSlots);
  float x[kSlotsPerThread];
#pragma unroll
  for (int k = 0; k < kSlotsPerThread; ++k) {
    const int slot = static_cast<int>(threadIdx.x) + k * kIdsThreads;
    x[k] = counts[slot] > 0 ? logits[keys[slot]] : 0.f;
  }
#pragma unroll
  for (int k = 0; k < kSlotsPerThread; ++k) {
    const int slot = static_cast<int>(threadIdx.x) + k * kIdsThreads;
    if (counts[slot] > 0) logits[keys[slot]] = penalised(x[k], counts[slot], pen);
  }
}

}  // namespace

int launch_penalty(const PenaltyParams& p, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  if (p.counts) {
    // Rows on x (up to 2^31 - 1 blocks), vocabulary chunks on y (at most 1024).
    const dim3 grid(p.batch, (p.vocab + kCountsPerBlock - 1) / kCountsPerBlock);
    penalty_from_counts_kernel<<<grid, kCountThreads, 0, s>>>(p);
  } else {
    penalty_from_ids_kernel<<<p.batch, kIdsThreads, 0, s>>>(p);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace kvserve::detail::cuda
