// The benchmark table of the kvserve tool: each entry runs one op at a shape
// given by its options, checks it against the fp64 oracle, and reports time,
// bytes and flops moved.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kvserve/core.hpp"
#include "options.hpp"
#include "reference/buffer.hpp"
#include "reference/compare.hpp"

namespace kvserve::cli {

struct BenchContext {
  Device device;
  int warmup = 3;
  int iters = 20;
  bool check = true;
  std::uint64_t seed = 1;
  bool on_gpu() const { return device.is_cuda(); }
};

struct BenchResult {
  std::string op;      // "decode"
  std::string shape;   // "B=64 L=4096 Hq=32 Hkv=8 D=128 page=16 bf16 NHD"
  std::string kernel;  // the plan's KernelInfo::key()
  double time_us = 0;  // median
  double bytes = 0;    // fewest bytes the op must move (inputs read once, outputs written once)
  double flops = 0;
  std::string check = "skipped";
  bool check_ok = true;
  // The --check verdict of a comparison with the oracle.
  void set_check(const test::Comparison& c) {
    check = c.summary();
    check_ok = c.failures == 0;
  }
};

struct BenchOp {
  std::string name;
  std::string summary;
  std::vector<OptionSpec> options;  // besides common_bench_options()
  // Fills one result; `op` is set to `name` before the call.
  std::function<Status(const Options&, const BenchContext&, BenchResult*)> run;
};

// The table (bench/registry.cpp).
const std::vector<BenchOp>& bench_ops();

// Median time of fn() in microseconds over ctx.iters runs after ctx.warmup,
// with CUDA events on a GPU and the steady clock on the CPU. Stops at the
// first error and returns it.
Status time_median_us(const BenchContext& ctx, const std::function<Status()>& fn, double* median_us);
// A large device-to-device copy, in bytes (read + written) per second: the
// ceiling the memory-bound ops are reported against.
double measured_copy_bandwidth(Device device);

// The device's L2 size in bytes (0 for the CPU): benches rotate inputs over
// more than this so that each timed run reads from device memory.
std::size_t l2_cache_bytes(Device device);

// The default device: cuda:0 when there is one, else the CPU.
Device default_device();

}  // namespace kvserve::cli
