#include "kvserve/core.hpp"

#include <sstream>

namespace kvserve {

std::string_view name_of(StatusCode c) {
  switch (c) {
    case StatusCode::ok: return "Ok";
    case StatusCode::invalid_argument: return "InvalidArgument";
    case StatusCode::unsupported: return "Unsupported";
    case StatusCode::workspace_too_small: return "WorkspaceTooSmall";
    case StatusCode::cuda_error: return "CudaError";
    case StatusCode::internal: return "Internal";
    case StatusCode::resource_exhausted: return "ResourceExhausted";
  }
  return "?";
}

Status Status::workspace_too_small(std::size_t needed, std::size_t got) {
  Status s(StatusCode::workspace_too_small,
           "workspace too small: needed " + std::to_string(needed) + " bytes, got " + std::to_string(got));
  s.needed_ = needed;
  s.got_ = got;
  return s;
}

std::string Status::to_string() const {
  if (is_ok()) return "Ok";
  return std::string(name_of(code_)) + ": " + message_;
}

std::string Device::to_string() const {
  if (is_cpu()) return "cpu";
  if (is_cuda()) return "cuda:" + std::to_string(ordinal);
  return "unknown device kind " + std::to_string(static_cast<int>(kind)) + ":" + std::to_string(ordinal);
}

namespace {
TensorView make_view(const void* data, DType dtype, std::initializer_list<std::int64_t> shape, Device device) {
  TensorView t;
  t.data = const_cast<void*>(data);
  t.dtype = dtype;
  t.device = device;
  t.rank = static_cast<int>(shape.size() < kMaxRank ? shape.size() : kMaxRank);
  int i = 0;
  for (std::int64_t s : shape) {
    if (i == t.rank) break;
    t.shape[i++] = s;
  }
  return t;
}

std::string join(const std::array<std::int64_t, kMaxRank>& v, int n) {
  if (n < 0 || n > kMaxRank) return "(invalid rank " + std::to_string(n) + ")";
  std::ostringstream os;
  os << '[';
  for (int i = 0; i < n; ++i) os << (i ? ", " : "") << v[i];
  os << ']';
  return os.str();
}
}  // namespace

TensorView TensorView::contiguous(const void* data, DType dtype, std::initializer_list<std::int64_t> shape,
                                  Device device) {
  TensorView t = make_view(data, dtype, shape, device);
  std::int64_t stride = 1;
  for (int i = t.rank - 1; i >= 0; --i) {
    t.strides[i] = stride;
    stride *= t.shape[i];
  }
  return t;
}

TensorView TensorView::strided(const void* data, DType dtype, std::initializer_list<std::int64_t> shape,
                               std::initializer_list<std::int64_t> strides, Device device) {
  TensorView t = make_view(data, dtype, shape, device);
  int i = 0;
  for (std::int64_t s : strides) {
    if (i == t.rank) break;
    t.strides[i++] = s;
  }
  return t;
}

std::int64_t TensorView::numel() const {
  if (!rank_valid()) return 0;
  std::int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= shape[i];
  return n;
}

bool TensorView::is_contiguous() const {
  if (!rank_valid()) return false;
  std::int64_t stride = 1;
  for (int i = rank - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != stride) return false;
    stride *= shape[i];
  }
  return true;
}

std::string TensorView::shape_string() const { return join(shape, rank); }
std::string TensorView::strides_string() const { return join(strides, rank); }

std::string KernelInfo::key() const {
  return std::string(backend == Backend::cpu ? "cpu" : "cuda") + "/" + arch + "/" + op + "/" + config;
}

}  // namespace kvserve
