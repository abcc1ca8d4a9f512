// Regression tests for what the fuzz targets (tests/fuzz/) found; each names
// its finding in docs/reliability.md. Every one fails without its fix.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kvserve/kvserve.h"

namespace {

// A C caller may store any int in an enum field; C++ may not form such an
// enum value except through its bytes.
template <class E>
void store_raw(E* field, int value) {
  static_assert(sizeof(E) == sizeof(int));
  std::memcpy(field, &value, sizeof value);
}

kvs_tensor f32_view(float* data, std::initializer_list<std::int64_t> shape) {
  kvs_tensor t{};
  t.data = data;
  t.dtype = KVS_F32;
  t.rank = static_cast<std::int32_t>(shape.size());
  std::int64_t stride = 1;
  for (int i = t.rank - 1; i >= 0; --i) {
    t.shape[i] = shape.begin()[i];
    t.strides[i] = stride;
    stride *= t.shape[i];
  }
  return t;
}

// Finding F1 (fuzz_capi): kvs_device.kind was compared as a C++ enum (UBSan:
// "load of value 2, which is not a valid value for type 'kvs_device_kind'"),
// and any kind other than CUDA silently meant the CPU. An unknown kind is now
// refused naming the device (create) or the argument (run).
TEST(FuzzFindings, CApiUnknownDeviceKindIsRefused) {
  const kvs_rms_norm_desc desc{.hidden_size = 8, .dtype = KVS_F32, .eps = 1e-6f, .weight_offset = 0.f, .fused_add = 0};
  kvs_device bad{KVS_DEVICE_CPU, 0};
  store_raw(&bad.kind, 2);
  kvs_rms_norm_plan* plan = nullptr;
  kvs_error err{};
  EXPECT_EQ(kvs_rms_norm_create(&desc, bad, &plan, &err), KVS_INVALID_ARGUMENT);
  EXPECT_EQ(plan, nullptr);
  EXPECT_NE(std::strstr(err.message, "device"), nullptr) << err.message;
  EXPECT_NE(std::strstr(err.message, "got 2"), nullptr) << err.message;

  ASSERT_EQ(kvs_rms_norm_create(&desc, {KVS_DEVICE_CPU, 0}, &plan, &err), KVS_OK) << err.message;
  std::vector<float> x(16, 1.f), w(8, 1.f), out(16, -7.f);
  kvs_rms_norm_args args{.x = f32_view(x.data(), {2, 8}), .weight = f32_view(w.data(), {8}), .residual = {},
                         .out = f32_view(out.data(), {2, 8})};
  store_raw(&args.x.device.kind, 7);
  EXPECT_EQ(kvs_rms_norm_run(plan, &args, nullptr, 0, nullptr, &err), KVS_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(err.message, "'x'"), nullptr) << err.message;
  EXPECT_NE(std::strstr(err.message, "unknown device kind 7"), nullptr) << err.message;
  EXPECT_EQ(out, std::vector<float>(16, -7.f));
  kvs_rms_norm_destroy(plan);
}

}  // namespace
