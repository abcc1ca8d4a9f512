// Helpers shared by the sampling-family tests: device buffers from host
// vectors, one-call runs of a Sampling plan, and the chi-square check.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "harness/harness.hpp"
#include "kvserve/sampling.hpp"

namespace kvserve::test {

// Runs `call` (a void helper that may assert or skip) and returns from the
// enclosing void function when it failed fatally or skipped the test.
#define KVS_RUN(call)                                \
  do {                                               \
    ASSERT_NO_FATAL_FAILURE(call);                   \
    if (::testing::Test::IsSkipped()) return;        \
  } while (0)

// An f32 buffer holding `values`, uploaded.
Buffer float_buffer(const std::vector<float>& values, Device device);
// The int32 contents of `b`, downloaded.
std::vector<std::int32_t> int_values(Buffer& b);

// Per-row tensors of a Sampling run; empty vectors are not passed.
struct SamplingRows {
  std::vector<float> temperature, top_p, min_p;
  std::vector<std::int32_t> top_k, seeds, offsets;
};

// Runs a Sampling plan for desc on `input` (B x desc.vocab, row-major) and
// stores the B tokens in *tokens. Output is poisoned first.
void run_sampling(const SamplingDesc& desc, Device device, const std::vector<float>& input, std::uint64_t seed,
                  std::uint64_t offset, const SamplingRows& rows, std::vector<std::int32_t>* tokens);

// Token counts over [0, vocab); tokens outside it fail the test.
std::vector<std::int64_t> histogram(const std::vector<std::int32_t>& tokens, int vocab);

// Expects `counts` to follow `expected` (probabilities over the vocabulary):
// no draw where the probability is 0, and Pearson's chi-square p-value above
// 1e-3. Returns the p-value.
double expect_follows(const std::vector<std::int64_t>& counts, const std::vector<double>& expected,
                      const std::string& what);

// Draws `draws` tokens from `row` with desc (the row repeated over the batch,
// host seeds, several offsets) and expects them to follow `expected`. A
// p-value under 1e-3 is retried once with a fresh seed: a correct sampler
// fails twice with probability 1e-6, a bias 1e5 draws can see fails both.
void expect_distribution(SamplingDesc desc, Device device, const std::vector<float>& row,
                         const std::vector<double>& expected, std::int64_t draws, std::mt19937_64& rng,
                         const std::string& what);

}  // namespace kvserve::test
