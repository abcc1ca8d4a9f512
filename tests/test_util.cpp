#include "test_util.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>


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

void expect_close(const std::vector<double>& got, const std::vector<double>& ref, DType out_dtype,
                  const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  const Comparison c = compare(got, ref, out_dtype);
  const double scale = max_abs_finite(ref);
  int shown = 0;
  for (std::size_t i = c.first_bad; c.failures > 0 && i < got.size() && shown < 5; ++i) {
    const double ratio = error_ratio(got[i], ref[i], scale, out_dtype);
    if (ratio > 1 && ++shown)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", expected " << ref[i] << " (" << ratio
                    << " times the bound)";
  }
  EXPECT_EQ(c.failures, 0u) << what << ": " << c.summary();
}

void expect_nonzero(const std::vector<double>& v, const std::string& what) {
  std::size_t nz = 0;
  for (double x : v) nz += (x != 0);
  ASSERT_GT(nz, v.size() / 2) << what << ": inputs are mostly zero; the test would prove nothing";
}

}  // namespace kvserve::test
