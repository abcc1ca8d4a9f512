#include "core/check.hpp"

#include <cmath>
#include <cstdint>
#include <sstream>

namespace kvserve::detail {

std::string to_text(std::int64_t v) { return std::to_string(v); }
std::string to_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
std::string to_text(DType t) { return std::string(name_of(t)); }
std::string to_text(Device d) { return d.to_string(); }
std::string to_text(std::string_view s) { return std::string(s); }

Status invalid_field(std::string_view op, std::string_view field, std::string_view expected,
                     std::string_view given) {
  return Status::invalid_argument(std::string(op) + ": descriptor field '" + std::string(field) + "': expected " +
                                  std::string(expected) + ", got " + std::string(given));
}

Status invalid_arg(std::string_view op, std::string_view arg, std::string_view expected, std::string_view given) {
  return Status::invalid_argument(std::string(op) + ": argument '" + std::string(arg) + "': expected " +
                                  std::string(expected) + ", got " + std::string(given));
}

Status check_positive(std::string_view op, std::string_view field, std::int64_t v) {
  if (v > 0) return Status::ok();
  return invalid_field(op, field, "> 0", to_text(v));
}

Status check_range(std::string_view op, std::string_view field, std::int64_t v, std::int64_t lo, std::int64_t hi) {
  if (v >= lo && v <= hi) return Status::ok();
  return invalid_field(op, field, "in [" + to_text(lo) + ", " + to_text(hi) + "]", to_text(v));
}

Status check_size(std::string_view op, std::string_view field, std::int64_t v, std::int64_t bound) {
  if (v >= 1 && v <= bound) return Status::ok();
  return invalid_field(op, field, "in [1, " + to_text(bound) + "]", to_text(v));
}

Status check_finite_positive(std::string_view op, std::string_view field, double v) {
  if (std::isfinite(v) && v > 0) return Status::ok();
  return invalid_field(op, field, "a finite value > 0", to_text(v));
}

Status check_divisible(std::string_view op, std::string_view field, std::int64_t num, std::string_view by_field,
                       std::int64_t den) {
  if (den > 0 && num % den == 0) return Status::ok();
  return invalid_field(op, field, "a multiple of " + std::string(by_field) + " (" + to_text(den) + ")",
                       to_text(num));
}

Status check_head_dim(std::string_view op, std::string_view field, int head_dim) {
  if (head_dim >= 16 && head_dim <= kMaxHeadDim && head_dim % 16 == 0) return Status::ok();
  return invalid_field(op, field, "a multiple of 16 in [16, " + to_text(std::int64_t{kMaxHeadDim}) + "]",
                       to_text(std::int64_t{head_dim}));
}

Status check_activation_dtype(std::string_view op, std::string_view field, DType t) {
  if (is_activation(t)) return Status::ok();
  return invalid_field(op, field, "f16, bf16 or f32", to_text(t));
}

Status check_device(std::string_view op, Device device) {
  if (!device.is_cpu() && !device.is_cuda()) {
    return Status::invalid_argument(std::string(op) + ": device: expected kind cpu (0) or cuda (1), got " +
                                    to_text(std::int64_t{static_cast<int>(device.kind)}));
  }
  if (device.is_cpu()) {
    if (device.ordinal == 0) return Status::ok();
    return Status::invalid_argument(std::string(op) + ": device: expected ordinal 0 for cpu, got " +
                                    to_text(std::int64_t{device.ordinal}));
  }
  if (!cuda_backend_built()) {
    return Status::unsupported(std::string(op) + ": this build has no CUDA backend (asked for " + device.to_string() +
                               "; configure with -DKVSERVE_ENABLE_CUDA=ON)");
  }
  const int n = cuda_device_count();
  if (device.ordinal < 0 || device.ordinal >= n) {
    return Status::invalid_argument(std::string(op) + ": device: expected a CUDA ordinal in [0, " + to_text(std::int64_t{n}) +
                                    "), got " + to_text(std::int64_t{device.ordinal}));
  }
  return Status::ok();
}

Status check_workspace(Workspace ws, std::size_t needed) {
  if (needed == 0) return Status::ok();
  if (ws.data == nullptr || ws.bytes < needed) return Status::workspace_too_small(needed, ws.data ? ws.bytes : 0);
  return Status::ok();
}

namespace {
std::string expected_shape(std::initializer_list<std::int64_t> shape) {
  std::ostringstream os;
  os << '[';
  int i = 0;
  for (std::int64_t s : shape) {
    os << (i++ ? ", " : "");
    if (s == kAny) os << '*';
    else os << s;
  }
  os << ']';
  return os.str();
}
}  // namespace

Status check_view(std::string_view op, std::string_view name, const TensorView& t) {
  if (!t.rank_valid())
    return invalid_arg(op, name, "a rank in [0, " + to_text(std::int64_t{kMaxRank}) + "]",
                       "rank " + to_text(std::int64_t{t.rank}));
  // Each term (extent - 1) * |stride| is at most the span, checked by division
  // before it is formed, so the sum of at most 6 terms cannot overflow.
  std::int64_t span = 0;
  for (int d = 0; d < t.rank; ++d) {
    const std::int64_t extent = t.shape[d], stride = t.strides[d];
    if (extent < 0) return invalid_arg(op, name, "extents >= 0", "shape " + t.shape_string());
    if (extent <= 1) continue;
    const std::int64_t step = stride < 0 ? (stride == INT64_MIN ? kMaxViewSpan + 1 : -stride) : stride;
    if (step > kMaxViewSpan / (extent - 1) || (span += step * (extent - 1)) > kMaxViewSpan)
      return invalid_arg(op, name, "a view spanning at most 2^48 elements",
                         "shape " + t.shape_string() + ", strides " + t.strides_string());
  }
  return Status::ok();
}

Status check_tensor(std::string_view op, std::string_view name, const TensorView& t, Device device, DType dtype,
                    std::initializer_list<std::int64_t> shape, bool last_dim_contiguous) {
  if (t.data == nullptr) return invalid_arg(op, name, "a tensor", "none (null data)");
  if (t.device != device) return invalid_arg(op, name, "memory on " + device.to_string(), t.device.to_string());
  if (t.dtype != dtype) return invalid_arg(op, name, "dtype " + to_text(dtype), to_text(t.dtype));
  KVSERVE_TRY(check_view(op, name, t));
  if (t.rank != static_cast<int>(shape.size()))
    return invalid_arg(op, name, "rank " + to_text(static_cast<std::int64_t>(shape.size())) + " " + expected_shape(shape),
                       "rank " + to_text(std::int64_t{t.rank}) + " " + t.shape_string());
  int i = 0;
  for (std::int64_t s : shape) {
    if (s != kAny && t.shape[i] != s)
      return invalid_arg(op, name, "shape " + expected_shape(shape), t.shape_string());
    ++i;
  }
  if (last_dim_contiguous && t.rank > 0 && t.shape[t.rank - 1] > 1 && t.strides[t.rank - 1] != 1)
    return invalid_arg(op, name, "a contiguous last dimension (stride 1)", "strides " + t.strides_string());
  return Status::ok();
}

Status check_optional_tensor(std::string_view op, std::string_view name, const TensorView& t, Device device,
                             DType dtype, std::initializer_list<std::int64_t> shape) {
  if (t.data == nullptr) return Status::ok();
  return check_tensor(op, name, t, device, dtype, shape);
}

Status check_contiguous(std::string_view op, std::string_view name, const TensorView& t) {
  if (t.is_contiguous()) return Status::ok();
  return invalid_arg(op, name, "a contiguous (row-major) tensor", "strides " + t.strides_string());
}

Status check_indptr(std::string_view op, std::string_view name, std::span<const std::int32_t> indptr) {
  if (indptr.empty()) return invalid_arg(op, name, "at least one entry (batch + 1)", "0 entries");
  if (indptr[0] != 0) return invalid_arg(op, name, "entry 0 to be 0", to_text(std::int64_t{indptr[0]}));
  for (std::size_t i = 1; i < indptr.size(); ++i) {
    if (indptr[i] < indptr[i - 1])
      return invalid_arg(op, name, "non-decreasing entries; entry " + std::to_string(i) + " >= " + std::to_string(indptr[i - 1]),
                         to_text(std::int64_t{indptr[i]}));
  }
  return Status::ok();
}

}  // namespace kvserve::detail
