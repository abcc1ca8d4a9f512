#include "reference/buffer.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#if KVSERVE_REFERENCE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kvserve::test {

#if KVSERVE_REFERENCE_CUDA
namespace {
void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::abort();
  }
}
}  // namespace
#endif

DeviceMemory::DeviceMemory(Device device, std::size_t bytes) : device_(device), bytes_(bytes) {
  const std::size_t n = bytes ? bytes : 1;
  if (device.is_cpu()) {
    data_ = ::operator new(n, std::align_val_t{256});
    return;
  }
#if KVSERVE_REFERENCE_CUDA
  cuda_check(cudaSetDevice(device.ordinal), "cudaSetDevice");
  cuda_check(cudaMalloc(&data_, n), "cudaMalloc");
#endif
}

DeviceMemory::~DeviceMemory() {
  if (device_.is_cpu()) {
    ::operator delete(data_, std::align_val_t{256});
    return;
  }
#if KVSERVE_REFERENCE_CUDA
  cudaFree(data_);
#endif
}

void DeviceMemory::upload(const void* host, std::size_t bytes) { copy(data_, host, bytes, /*to_device=*/true); }

void DeviceMemory::download(void* host, std::size_t bytes) const { copy(host, data_, bytes, /*to_device=*/false); }

void DeviceMemory::copy(void* dst, const void* src, std::size_t bytes, bool to_device) const {
  if (bytes == 0) return;  // an empty buffer's pointers may be null
  if (device_.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if KVSERVE_REFERENCE_CUDA
  cuda_check(cudaMemcpy(dst, src, bytes, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost),
             to_device ? "cudaMemcpy H2D" : "cudaMemcpy D2H");
#else
  (void)to_device;
#endif
}

void synchronize(Device device) {
#if KVSERVE_REFERENCE_CUDA
  if (device.is_cuda()) cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
#else
  (void)device;
#endif
}

Workspace workspace_of(const DeviceMemory& m) { return Workspace{m.data(), m.bytes()}; }

Buffer::Buffer(DType dtype, std::int64_t n, Device device)
    : dtype_(dtype),
      n_(n),
      host_(static_cast<std::size_t>(n) * size_of(dtype)),
      mem_(std::make_shared<DeviceMemory>(device, static_cast<std::size_t>(n) * size_of(dtype))) {}

double Buffer::get(std::int64_t i) const {
  if (dtype_ == DType::int32) return reinterpret_cast<const std::int32_t*>(host_.data())[i];
  return load_as_float(dtype_, host_.data(), i);
}

void Buffer::set(std::int64_t i, double x) {
  if (dtype_ == DType::int32) {
    reinterpret_cast<std::int32_t*>(host_.data())[i] = static_cast<std::int32_t>(x);
    return;
  }
  store_from_float(dtype_, host_.data(), i, static_cast<float>(x));
}

std::vector<double> Buffer::values() const {
  std::vector<double> v(static_cast<std::size_t>(n_));
  for (std::int64_t i = 0; i < n_; ++i) v[i] = get(i);
  return v;
}

void Buffer::fill_uniform(std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> dist(lo, hi);
  for (std::int64_t i = 0; i < n_; ++i) set(i, dist(rng));
  upload();
}

void Buffer::poison() {
  for (std::int64_t i = 0; i < n_; ++i) {
    if (dtype_ == DType::int32) reinterpret_cast<std::int32_t*>(host_.data())[i] = std::numeric_limits<std::int32_t>::min();
    else set(i, std::numeric_limits<double>::quiet_NaN());
  }
  upload();
}

void Buffer::upload() { mem_->upload(host_.data(), host_.size()); }
void Buffer::download() { mem_->download(host_.data(), host_.size()); }

TensorView Buffer::view(std::initializer_list<std::int64_t> shape) const {
  return TensorView::contiguous(mem_->data(), dtype_, shape, mem_->device());
}
TensorView Buffer::view_strided(std::initializer_list<std::int64_t> shape,
                                std::initializer_list<std::int64_t> strides) const {
  return TensorView::strided(mem_->data(), dtype_, shape, strides, mem_->device());
}

Buffer int_buffer(const std::vector<std::int32_t>& values, Device device) {
  Buffer b(DType::int32, static_cast<std::int64_t>(values.size()), device);
  for (std::size_t i = 0; i < values.size(); ++i) b.set(static_cast<std::int64_t>(i), values[i]);
  b.upload();
  return b;
}

}  // namespace kvserve::test
