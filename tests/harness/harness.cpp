#include "harness/harness.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace kvserve::test {

CaseTally& case_tally() {
  static CaseTally tally;
  return tally;
}

std::vector<Device> test_devices() {
  std::vector<Device> d{Device::cpu()};
  if (cuda_device_count() > 0) d.push_back(Device::cuda(0));
  return d;
}

std::string device_label(Device d) { return d.is_cpu() ? "cpu" : "cuda" + std::to_string(d.ordinal); }

Device other_device(Device d) { return d.is_cpu() ? Device::cuda(0) : Device::cpu(); }

void lengths_to_table(const std::vector<std::int64_t>& lens, std::vector<std::int32_t>* indptr,
                      std::vector<std::int32_t>* last) {
  indptr->assign(1, 0);
  last->clear();
  for (std::int64_t len : lens) {
    indptr->push_back(indptr->back() + static_cast<std::int32_t>((len + 15) / 16));
    last->push_back(len == 0 ? 0 : static_cast<std::int32_t>((len - 1) % 16 + 1));
  }
}

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

void expect_rejected(const Status& s, const std::string& name, StatusCode code) {
  EXPECT_EQ(s.code(), code) << "'" << name << "': " << s.to_string();
  EXPECT_NE(s.message().find("'" + name + "'"), std::string::npos)
      << "the message does not name '" << name << "': " << s.to_string();
}

void expect_rejected(const std::function<Status()>& run, const std::string& name,
                     const std::function<std::vector<double>()>& outputs) {
  SCOPED_TRACE("bad " + name);
  const std::vector<double> before = outputs();
  expect_rejected(run(), name);
  const std::vector<double> after = outputs();
  // Byte-wise: NaN poison compares unequal to itself.
  ASSERT_EQ(before.size(), after.size());
  EXPECT_EQ(std::memcmp(before.data(), after.data(), before.size() * sizeof(double)), 0)
      << "a refused run wrote an output";
}

::testing::AssertionResult still_poisoned(Buffer& b) {
  synchronize(b.device());
  b.download();
  for (std::int64_t i = 0; i < b.size(); ++i) {
    const double x = b.get(i);
    const bool poisoned =
        b.dtype() == DType::int32 ? x == static_cast<double>(std::numeric_limits<std::int32_t>::min()) : std::isnan(x);
    if (!poisoned) return ::testing::AssertionFailure() << "element " << i << " was written (" << x << ")";
  }
  return ::testing::AssertionSuccess();
}

std::vector<ViewFault> view_faults(const std::vector<ViewFaultKind>& kinds, Device plan_device,
                                   std::optional<DType> wrong_dtype) {
  const Device elsewhere = other_device(plan_device);
  std::vector<ViewFault> faults;
  for (ViewFaultKind kind : kinds) {
    switch (kind) {
      case ViewFaultKind::absent:
        faults.push_back({"absent", [](TensorView& v) { v = {}; }});
        break;
      case ViewFaultKind::no_data:
        faults.push_back({"no data", [](TensorView& v) { v.data = nullptr; }});
        break;
      case ViewFaultKind::wrong_dtype:
        faults.push_back({"wrong dtype", [wrong_dtype](TensorView& v) {
                            v.dtype = wrong_dtype ? *wrong_dtype : v.dtype == DType::f32 ? DType::f16 : DType::f32;
                          }});
        break;
      case ViewFaultKind::extra_dimension:
        faults.push_back({"one more dimension", [](TensorView& v) {
                            v.shape[v.rank] = 1;
                            v.strides[v.rank] = 1;
                            ++v.rank;
                          }});
        break;
      case ViewFaultKind::negative_extent:
        faults.push_back({"negative extent", [](TensorView& v) { v.shape[0] = -1; }});
        break;
      case ViewFaultKind::last_extent_plus_one:
        faults.push_back({"last extent + 1", [](TensorView& v) { ++v.shape[v.rank - 1]; }});
        break;
      case ViewFaultKind::strided_last_dimension:
        faults.push_back({"strided last dimension", [](TensorView& v) { v.strides[v.rank - 1] = 2; }});
        break;
      case ViewFaultKind::other_device:
        faults.push_back({"memory on " + elsewhere.to_string(), [elsewhere](TensorView& v) { v.device = elsewhere; }});
        break;
    }
  }
  return faults;
}

}  // namespace kvserve::test
