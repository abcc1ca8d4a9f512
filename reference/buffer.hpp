// Typed buffers on any device for the tests and the CLI: a host copy the
// caller reads and writes, a device copy the op sees (the same memory on the
// CPU backend).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "kvserve/core.hpp"

namespace kvserve::test {

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
  // One copy between host and this memory (a plain memcpy on the CPU).
  void copy(void* dst, const void* src, std::size_t bytes, bool to_device) const;
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
  void fill_uniform(std::mt19937_64& rng, double lo, double hi);  // and upload
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

}  // namespace kvserve::test
