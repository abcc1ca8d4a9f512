// The harness every test family uses: the devices a test runs on and the
// skips when there is no GPU, fresh random inputs, comparisons whose tolerance
// comes from the dtype, and the shared checks of a refusal: the status names
// the field or argument, the outputs are still poisoned, and the ways any
// tensor argument is made bad. (Typed buffers and the fp64 oracle are
// reference/, shared with the CLI.)
#pragma once

#include <cstdio>

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kvserve/core.hpp"
#include "reference/buffer.hpp"
#include "reference/compare.hpp"

namespace kvserve::test {

// The devices the tests run on: the CPU, plus cuda:0 when this build has the
// CUDA backend and a device is visible.
std::vector<Device> test_devices();
// Names a device for gtest parameter names ("cpu", "cuda0").
std::string device_label(Device d);
// The device a "wrong device" fault moves a view to: cuda:0 for the CPU, the
// CPU for a GPU.
Device other_device(Device d);

// For GPU-only tests: skips with a visible message when there is no GPU.
#define KVS_REQUIRE_GPU()                                                           \
  do {                                                                              \
    if (::kvserve::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU test skipped"; \
  } while (0)

// What a GPU-only file (cuda_*_test.cpp) holds in a build without the CUDA
// backend: one test, Suite.NeedsTheCudaBackend, skipped with the reason.
#define KVS_NEEDS_CUDA_BACKEND(Suite) \
  TEST(Suite, NeedsTheCudaBackend) { GTEST_SKIP() << "this build has no CUDA backend: GPU tests skipped"; }

// The cases of the running test: created (ran) and left out for want of a
// CUDA kernel for their configuration (not built). KVS_CREATE_OR_SKIP counts
// them, DeviceTest resets them as each test starts.
struct CaseTally {
  int ran = 0, not_built = 0;
};
CaseTally& case_tally();

// The fixture of every test parametrised over test_devices(): a test reads
// SKIPPED only when every case it met was left out (a GPU build without
// that kernel), not when one of several was; the cases left out are printed.
class DeviceTest : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { case_tally() = {}; }
  void TearDown() override {
    if (case_tally().ran == 0 && case_tally().not_built > 0)
      GTEST_SKIP() << "no case of this test has a kernel on " << GetParam().to_string();
  }
};

// Creates a plan into `var`. On a GPU whose build has no kernel for the
// configuration (Unsupported) the case is left out: noted, counted, and the
// enclosing function returns (a test body, or the helper running one case of
// it). Anywhere else a failure to create fails the test.
#define KVS_CREATE_OR_SKIP(var, PlanType, desc, device)                                  \
  auto var = PlanType::create(desc, device);                                             \
  do {                                                                                   \
    if (!var && (device).is_cuda() && var.status().code() == ::kvserve::StatusCode::unsupported) { \
      ++::kvserve::test::case_tally().not_built;                                         \
      std::printf("[ NOT BUILT] %s\n", var.status().to_string().c_str());               \
      return;                                                                            \
    }                                                                                    \
    ASSERT_TRUE(var) << var.status().to_string();                                        \
    ++::kvserve::test::case_tally().ran;                                                 \
  } while (0)

// A page table's indptr and last_page_len for requests of `lens` tokens on
// 16-token pages, pages numbered in order (a request without pages: 0).
void lengths_to_table(const std::vector<std::int64_t>& lens, std::vector<std::int32_t>* indptr,
                      std::vector<std::int32_t>* last);

// A fresh generator per test, seeded from the clock; the seed is printed so a
// failure can be replayed with KVSERVE_TEST_SEED.
std::mt19937_64 make_rng();

// Expects got ~ ref within the dtype-derived bound of compare.hpp; reports the
// first few failures with their index.
void expect_close(const std::vector<double>& got, const std::vector<double>& ref, DType out_dtype,
                  const std::string& what);
// Asserts that inputs are not trivially zero.
void expect_nonzero(const std::vector<double>& v, const std::string& what);

// ---------------------------------------------------------------- refusals

// `s` has `code` and its message names `name` quoted ('name'), as the library
// quotes the descriptor field or run() argument it refuses.
void expect_rejected(const Status& s, const std::string& name, StatusCode code = StatusCode::invalid_argument);
// For outputs that hold data rather than poison (a cache an append writes
// into): `run` is refused naming `name`, and `outputs` (which downloads and
// returns them) gives the same bytes before and after.
void expect_rejected(const std::function<Status()>& run, const std::string& name,
                     const std::function<std::vector<double>()>& outputs);

// After a device sync, downloads `b` and succeeds when every element still
// holds Buffer::poison()'s value (NaN, INT32_MIN for int32); else names the
// first written element.
::testing::AssertionResult still_poisoned(Buffer& b);

// The ways a tensor argument is made bad, each a change to its view.
enum class ViewFaultKind {
  absent,                  // the view is {} (not given)
  no_data,                 // data is null, the rest kept
  wrong_dtype,             // see view_faults
  extra_dimension,         // one more dimension, of extent 1
  negative_extent,         // shape[0] = -1
  last_extent_plus_one,    // the last extent one larger
  strided_last_dimension,  // the last stride 2
  other_device,            // on other_device(plan_device)
};
struct ViewFault {
  std::string what;  // "wrong dtype", "memory on cuda:0", ...
  std::function<void(TensorView&)> apply;
};
// The faults of `kinds`, in that order, for an argument of a plan on
// `plan_device`. wrong_dtype sets `wrong_dtype` when given, else f16 for an f32
// view and f32 for any other.
std::vector<ViewFault> view_faults(const std::vector<ViewFaultKind>& kinds, Device plan_device,
                                   std::optional<DType> wrong_dtype = std::nullopt);

}  // namespace kvserve::test
