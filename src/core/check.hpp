// Validation helpers shared by every op's rules. Each returns ok() or an
// InvalidArgument whose message names the op, the field or argument, what was
// expected and what was given:
//   "BatchPagedDecode: argument 'q': expected shape [4, 32, 128], got [4, 32, 64]"
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "kvserve/core.hpp"

namespace kvserve::detail {

inline constexpr std::int64_t kAny = -1;  // a shape entry that is not checked

std::string to_text(std::int64_t v);
std::string to_text(double v);
std::string to_text(DType t);
std::string to_text(Device d);
std::string to_text(std::string_view s);

Status invalid_field(std::string_view op, std::string_view field, std::string_view expected,
                     std::string_view given);
Status invalid_arg(std::string_view op, std::string_view arg, std::string_view expected,
                   std::string_view given);

// Descriptor fields.
Status check_positive(std::string_view op, std::string_view field, std::int64_t v);
Status check_range(std::string_view op, std::string_view field, std::int64_t v, std::int64_t lo,
                   std::int64_t hi);
// A size field of a descriptor: in [1, bound] (bounds in kvserve/core.hpp).
Status check_size(std::string_view op, std::string_view field, std::int64_t v, std::int64_t bound);
Status check_finite_positive(std::string_view op, std::string_view field, double v);
Status check_divisible(std::string_view op, std::string_view field, std::int64_t num,
                       std::string_view by_field, std::int64_t den);
// head_dim: a multiple of 16 in [16, 256] (64, 128, 256 are the common ones).
Status check_head_dim(std::string_view op, std::string_view field, int head_dim);
Status check_activation_dtype(std::string_view op, std::string_view field, DType t);

// The plan's device exists (for CUDA: the backend is built and the ordinal is
// visible).
Status check_device(std::string_view op, Device device);
Status check_workspace(Workspace ws, std::size_t needed);

// A view's rank is in [0, kMaxRank] (checked before anything reads its shape),
// its extents are >= 0 and its farthest element is at most kMaxViewSpan
// elements from its first. check_tensor starts with this.
Status check_view(std::string_view op, std::string_view name, const TensorView& t);

// A required tensor: defined, on `device`, of `dtype`, of rank shape.size() with
// each entry equal (kAny skips), every extent >= 0, last dim contiguous (stride
// 1) unless `last_dim_contiguous` is false.
Status check_tensor(std::string_view op, std::string_view name, const TensorView& t, Device device,
                    DType dtype, std::initializer_list<std::int64_t> shape,
                    bool last_dim_contiguous = true);
// The same for an optional tensor: ok when undefined (data == nullptr).
Status check_optional_tensor(std::string_view op, std::string_view name, const TensorView& t,
                             Device device, DType dtype, std::initializer_list<std::int64_t> shape);
// Fully contiguous, row-major.
Status check_contiguous(std::string_view op, std::string_view name, const TensorView& t);

// Host-side CSR offsets: size batch + 1, starts at 0, non-decreasing.
Status check_indptr(std::string_view op, std::string_view name, std::span<const std::int32_t> indptr);

}  // namespace kvserve::detail
