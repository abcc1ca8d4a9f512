// Helpers for the GPU-only tests (tests/<family>/cuda_*_test.cpp): streams, a watchdog
// that fails a test instead of letting it hang, and bitwise comparison.
#pragma once

#if KVSERVE_TEST_CUDA
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "harness/harness.hpp"

namespace kvserve::test {

#define KVS_CUDA_OK(expr)                                                                  \
  do {                                                                                     \
    const cudaError_t kvs_e_ = (expr);                                                     \
    ASSERT_EQ(kvs_e_, cudaSuccess) << #expr << ": " << cudaGetErrorString(kvs_e_);         \
  } while (0)

// The device the GPU-only tests run on, and how long any of their waits may
// take before the watchdog fails the test.
inline const Device kGpu = Device::cuda(0);
inline constexpr double kWatchdogSeconds = 60;

// Waits for `stream` by polling cudaStreamQuery; a stream still busy after
// `seconds` fails the test (a hung kernel reports instead of blocking CI).
inline ::testing::AssertionResult finishes_within(cudaStream_t stream, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    const cudaError_t e = cudaStreamQuery(stream);
    if (e == cudaSuccess) return ::testing::AssertionSuccess();
    if (e != cudaErrorNotReady) return ::testing::AssertionFailure() << "stream failed: " << cudaGetErrorString(e);
    if (std::chrono::steady_clock::now() > deadline)
      return ::testing::AssertionFailure() << "watchdog: stream still busy after " << seconds << " s";
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// A stream that is destroyed with the test.
class TestStream {
 public:
  TestStream() { cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking); }
  ~TestStream() { cudaStreamDestroy(s_); }
  TestStream(const TestStream&) = delete;
  TestStream& operator=(const TestStream&) = delete;
  cudaStream_t get() const { return s_; }
  Stream handle() const { return Stream{s_}; }

 private:
  cudaStream_t s_ = nullptr;
};

// The device copy of a buffer, byte for byte.
inline std::vector<unsigned char> device_bytes(const Buffer& b) {
  std::vector<unsigned char> host(static_cast<std::size_t>(b.size()) * size_of(b.dtype()));
  cudaMemcpy(host.data(), b.view({b.size()}).data, host.size(), cudaMemcpyDeviceToHost);
  return host;
}

}  // namespace kvserve::test
#endif  // KVSERVE_TEST_CUDA
