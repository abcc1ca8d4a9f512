// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011): a counter-based generator. The same 128-bit counter and 64-bit key
// always give the same four 32-bit words, on the host and on the GPU, so the
// CPU and CUDA samplers draw identical numbers for the same (seed, offset).
//
// Usable from host C++ and from CUDA device code (this header includes no CUDA
// header; under nvcc the functions are __host__ __device__).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define KVSERVE_HD __host__ __device__ __forceinline__
#else
#define KVSERVE_HD inline
#endif

namespace kvserve::detail {

struct PhiloxBlock {
  std::uint32_t x[4];
};

// The round multipliers and the Weyl key increments of the reference
// implementation (Random123).
inline constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

// Ten rounds; the key is bumped by (W0, W1) between rounds.
KVSERVE_HD PhiloxBlock philox4x32_10(PhiloxBlock counter, std::uint32_t key0, std::uint32_t key1) {
  std::uint32_t c0 = counter.x[0], c1 = counter.x[1], c2 = counter.x[2], c3 = counter.x[3];
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kPhiloxM0) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(kPhiloxM1) * c2;
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c0 = hi1 ^ c1 ^ key0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ key1;
    c3 = lo0;
    key0 += kPhiloxW0;
    key1 += kPhiloxW1;
  }
  return {{c0, c1, c2, c3}};
}

// The kvserve random stream (docs/sampling.md, "Random numbers"): the block for
// draw `draw` of stream `stream` under (seed, offset) is
//   philox4x32_10(counter = (offset_lo, offset_hi, stream, draw), key = (seed_lo, seed_hi)).
// `stream` is the batch row when seed and offset are host values, and 0 when
// each row brings its own seed and offset.
KVSERVE_HD PhiloxBlock random_block(std::uint64_t seed, std::uint64_t offset, std::uint32_t stream,
                                    std::uint32_t draw) {
  const PhiloxBlock counter{
      {static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(offset >> 32), stream, draw}};
  return philox4x32_10(counter, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// The 64-bit integer a draw scales by its total mass: x1 * 2^32 + x0.
KVSERVE_HD std::uint64_t draw_bits(const PhiloxBlock& b) {
  return (static_cast<std::uint64_t>(b.x[1]) << 32) | b.x[0];
}

// The uniform of an accept/reject test: the top 24 bits of x2 times 2^-24, an
// exact float in [0, 1 - 2^-24].
KVSERVE_HD float accept_uniform(const PhiloxBlock& b) {
  return static_cast<float>(b.x[2] >> 8) * 0x1p-24f;
}

}  // namespace kvserve::detail
