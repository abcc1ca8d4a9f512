// Shared test helpers: typed buffers on any device, fresh random inputs,
// poisoned outputs, and comparisons whose tolerance comes from the dtype.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "buffer.hpp"
#include "compare.hpp"
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

// Creates a plan into `var`; on a GPU whose build has no kernel for the
// configuration (Unsupported) the test is skipped with the reason, anywhere
// else a failure to create fails the test.
#define KVS_CREATE_OR_SKIP(var, PlanType, desc, device)                                  \
  auto var = PlanType::create(desc, device);                                             \
  do {                                                                                   \
    if (!var && (device).is_cuda() && var.status().code() == ::kvserve::StatusCode::unsupported) \
      GTEST_SKIP() << var.status().to_string();                                          \
    ASSERT_TRUE(var) << var.status().to_string();                                        \
  } while (0)

// A fresh generator per test, seeded from the clock; the seed is printed so a
// failure can be replayed with KVSERVE_TEST_SEED.
std::mt19937_64 make_rng();

// Expects got ~ ref within the dtype-derived bound of compare.hpp; reports the
// first few failures with their index.
void expect_close(const std::vector<double>& got, const std::vector<double>& ref, DType out_dtype,
                  const std::string& what);
// Asserts that inputs are not trivially zero.
void expect_nonzero(const std::vector<double>& v, const std::string& what);

}  // namespace kvserve::test
