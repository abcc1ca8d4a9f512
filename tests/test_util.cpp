#include "test_util.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#if KVSERVE_TEST_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kvserve::test {

std::vector<Device> test_devices() {
  std::vector<Device> d{Device::cpu()};
  if (cuda_device_count() > 0) d.push_back(Device::cuda(0));
  return d;
}

std::string device_label(Device d) { return d.is_cpu() ? "cpu" : "cuda" + std::to_string(d.ordinal); }

std::mt19937_64 make_rng() {
  std::uint64_t seed;
  if (const char* s = std::getenv("KVSERVE_TEST_SEED")) {
    seed = std::strtoull(s, nullptr, 10);
  } else {
    seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("KVSERVE_TEST_SEED=" + std::to_string(seed));
  std::printf("[   seed   ] KVSERVE_TEST_SEED=%llu\n", static_cast<unsigned long long>(seed));
  return std::mt19937_64(seed);
}

#if KVSERVE_TEST_CUDA
namespace {
void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    ADD_FAILURE() << what << ": " << cudaGetErrorString(e);
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
#if KVSERVE_TEST_CUDA
  cuda_check(cudaSetDevice(device.ordinal), "cudaSetDevice");
  cuda_check(cudaMalloc(&data_, n), "cudaMalloc");
#endif
}

DeviceMemory::~DeviceMemory() {
  if (device_.is_cpu()) {
    ::operator delete(data_, std::align_val_t{256});
    return;
  }
#if KVSERVE_TEST_CUDA
  cudaFree(data_);
#endif
}

void DeviceMemory::upload(const void* host, std::size_t bytes) {
  if (device_.is_cpu()) {
    std::memcpy(data_, host, bytes);
    return;
  }
#if KVSERVE_TEST_CUDA
  cuda_check(cudaMemcpy(data_, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
#endif
}

void DeviceMemory::download(void* host, std::size_t bytes) const {
  if (device_.is_cpu()) {
    std::memcpy(host, data_, bytes);
    return;
  }
#if KVSERVE_TEST_CUDA
  cuda_check(cudaMemcpy(host, data_, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
#endif
}

void synchronize(Device device) {
#if KVSERVE_TEST_CUDA
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

double unit_roundoff(DType t) {
  switch (t) {
    case DType::f16: return std::ldexp(1.0, -11);
    case DType::bf16: return std::ldexp(1.0, -8);
    case DType::f32: return std::ldexp(1.0, -24);
    case DType::fp8_e4m3: return std::ldexp(1.0, -4);
    case DType::fp8_e5m2: return std::ldexp(1.0, -3);
    case DType::int32: return 0;
  }
  return 0;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& ref, DType out_dtype,
                  const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double scale = 0;
  for (double r : ref)
    if (std::isfinite(r)) scale = std::max(scale, std::fabs(r));
  const double u = unit_roundoff(out_dtype);
  const double atol = (2 * u + std::ldexp(1.0, -16)) * scale;
  int failures = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = ref[i];
    bool ok;
    if (std::isnan(r)) ok = std::isnan(g);
    else if (std::isinf(r)) ok = g == r;
    else ok = std::isfinite(g) && std::fabs(g - r) <= 2 * u * std::fabs(r) + atol;
    if (!ok && failures++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << g << ", expected " << r << " (bound "
                    << 2 * u * std::fabs(r) + atol << ")";
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << got.size() << " elements out of bounds";
}

void expect_nonzero(const std::vector<double>& v, const std::string& what) {
  std::size_t nz = 0;
  for (double x : v) nz += (x != 0);
  ASSERT_GT(nz, v.size() / 2) << what << ": inputs are mostly zero; the test would prove nothing";
}

}  // namespace kvserve::test
