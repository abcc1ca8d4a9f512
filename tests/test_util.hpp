// Shared test helpers: typed buffers on any device, fresh random inputs,
// poisoned outputs, and comparisons whose tolerance comes from the dtype.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kvserve/core.hpp"

namespace kvserve::test {

// The devices the tests run on: the CPU, plus cuda:0 when this build has the
// CUDA backend and a device is visible.
std::vector<Device> test_devices();
// Names a device for gtest parameter names ("cpu", "cuda0").
std::string device_label(Device d);
// For GPU-only tests: skips with a visible message when there is no GPU.
#define KVS_REQUIRE_GPU()                                                           \
  do {                                                                              \
    if (::kvserve::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU test skipped"; \
  } while (0)

// A fresh generator per test, seeded from the clock; the seed is printed so a
// failure can be replayed with KVSERVE_TEST_SEED.
std::mt19937_64 make_rng();

// Memory on a device (plain host memory for the CPU, cudaMalloc for CUDA).
class DeviceMemory {
 public:
  DeviceMemory(Device device, std::size_t bytes);
  ~DeviceMemory();
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  void upload(const void* host, std::size_t bytes);
  void download(void* host, std::size_t bytes) const;

 private:
  Device device_;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};
void synchronize(Device device);
Workspace workspace_of(const DeviceMemory& m);

// n elements of dtype, with a host copy the test reads and writes through
// get/set and a device copy the op sees (the same memory on the CPU).
class Buffer {
 public:
  Buffer() = default;
  Buffer(DType dtype, std::int64_t n, Device device = Device::cpu());
  DType dtype() const { return dtype_; }
  std::int64_t size() const { return n_; }
  Device device() const { return mem_->device(); }

  double get(std::int64_t i) const;
  void set(std::int64_t i, double x);  // rounds to the dtype
  std::vector<double> values() const;  // all of get()
  void fill_uniform(std::mt19937_64& rng, double lo, double hi);
  // NaN for floating types, INT32_MIN for int32: unwritten outputs fail.
  void poison();

  void upload();    // host copy -> device copy
  void download();  // device copy -> host copy
  // Views the device copy.
  TensorView view(std::initializer_list<std::int64_t> shape) const;
  TensorView view_strided(std::initializer_list<std::int64_t> shape, std::initializer_list<std::int64_t> strides) const;

 private:
  DType dtype_ = DType::f32;
  std::int64_t n_ = 0;
  std::vector<unsigned char> host_;
  std::shared_ptr<DeviceMemory> mem_;
};

// An int32 buffer holding `values`, uploaded.
Buffer int_buffer(const std::vector<std::int32_t>& values, Device device);

// Unit roundoff of a dtype: half an ulp at 1.
double unit_roundoff(DType t);

// Expects got ~ ref element-wise with the bound
//   |got - ref| <= 2 u |ref| + (2 u + 2^-16) max|ref|
// where u is the output dtype's unit roundoff (rounding the result) and 2^-16
// covers fp32 accumulation over long reductions. NaN never passes; ref and got
// must agree on infinities. Reports the first few failures with their index.
void expect_close(const std::vector<double>& got, const std::vector<double>& ref, DType out_dtype,
                  const std::string& what);
// Asserts that inputs are not trivially zero.
void expect_nonzero(const std::vector<double>& v, const std::string& what);

}  // namespace kvserve::test
