#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "bench.hpp"

#if KVSERVE_BENCH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kvserve::cli {

Device default_device() { return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu(); }

Status time_median_us(const BenchContext& ctx, const std::function<Status()>& fn, double* median_us) {
  for (int i = 0; i < ctx.warmup; ++i) KVSERVE_TRY(fn());
  std::vector<double> t;
#if KVSERVE_BENCH_CUDA
  if (ctx.device.is_cuda()) {
    // The stream is held by a host callback until the timed work has been
    // enqueued, so the events bracket the kernels alone and not the host's
    // launch latency (the GPU would otherwise wait idle for each launch).
    // Benches that need a cold L2 rotate their inputs (bench_attention.cpp).
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    for (int i = 0; i < ctx.iters; ++i) {
      std::atomic<bool> enqueued{false};
      cudaLaunchHostFunc(
          nullptr, [](void* flag) { while (!static_cast<std::atomic<bool>*>(flag)->load()) {} }, &enqueued);
      cudaEventRecord(a);
      Status s = fn();
      cudaEventRecord(b);
      enqueued = true;
      cudaEventSynchronize(b);  // also keeps `enqueued` alive until the callback has seen it
      if (!s) return s;
      float ms = 0;
      cudaEventElapsedTime(&ms, a, b);
      t.push_back(ms * 1e3);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return Status::cuda_error(cudaGetErrorString(e));
  }
#endif
  if (ctx.device.is_cpu()) {
    for (int i = 0; i < ctx.iters; ++i) {
      const auto start = std::chrono::steady_clock::now();
      KVSERVE_TRY(fn());
      t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
  }
  std::sort(t.begin(), t.end());
  *median_us = t.empty() ? 0 : t[t.size() / 2];
  return Status::ok();
}

std::size_t l2_cache_bytes(Device device) {
#if KVSERVE_BENCH_CUDA
  int bytes = 0;
  if (device.is_cuda() && cudaDeviceGetAttribute(&bytes, cudaDevAttrL2CacheSize, device.ordinal) == cudaSuccess)
    return static_cast<std::size_t>(bytes);
#endif
  (void)device;
  return 0;
}

double measured_copy_bandwidth(Device device) {
  const std::size_t bytes = std::size_t{1} << 30;  // 1 GiB: far past any cache
#if KVSERVE_BENCH_CUDA
  if (device.is_cuda()) {
    void *a = nullptr, *b = nullptr;
    if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) return 0;
    cudaMemset(a, 1, bytes);
    cudaEvent_t s, e;
    cudaEventCreate(&s);
    cudaEventCreate(&e);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    float best = 1e30f;
    for (int i = 0; i < 10; ++i) {
      cudaEventRecord(s);
      cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
      cudaEventRecord(e);
      cudaEventSynchronize(e);
      float ms;
      cudaEventElapsedTime(&ms, s, e);
      best = std::min(best, ms);
    }
    cudaEventDestroy(s);
    cudaEventDestroy(e);
    cudaFree(a);
    cudaFree(b);
    return 2.0 * bytes / (best * 1e-3);
  }
#endif
  (void)device;
  const std::size_t n = bytes / 4;  // 256 MiB on the host
  std::vector<char> a(n, 1), b(n);
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), n);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return 2.0 * n / best;
}

}  // namespace kvserve::cli
