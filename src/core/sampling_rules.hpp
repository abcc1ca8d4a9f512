// Checks shared by the sampling family's rules (Sampling, SamplingRenorm,
// ChainSpeculativeSampling, TokenPenalty).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "core/check.hpp"
#include "kvserve/sampling.hpp"

namespace kvserve::detail {

// vocab in [1, kMaxSamplingVocab] (the fixed-point row mass must fit 63 bits).
Status check_vocab(std::string_view op, int vocab);
// An enum field holds one of `names` (its values 0 .. names.size() - 1).
Status check_enum(std::string_view op, std::string_view field, int value,
                  std::initializer_list<std::string_view> names);
// A [rows, columns] tensor of `dtype` with at most max_batch rows.
Status check_batch_tensor(std::string_view op, std::string_view name, const TensorView& t, Device device, DType dtype,
                          std::int64_t columns, int max_batch);
// A per-row tensor [batch] of `dtype`: required when `used`, otherwise absent
// (`unused_because` says why, e.g. "descriptor field 'params' is scalar").
Status check_row_tensor(std::string_view op, std::string_view name, const TensorView& t, bool used,
                        std::string_view unused_because, Device device, DType dtype, std::int64_t batch);
// The per-row seeds / offsets of RandomSource::per_row, when the op draws.
Status check_random_tensors(std::string_view op, RandomSource random, bool draws, const TensorView& seeds,
                            const TensorView& offsets, Device device, std::int64_t batch);

}  // namespace kvserve::detail
