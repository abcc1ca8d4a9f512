// The C ABI, driven from C (capi_smoke.c) and from C++ for the error paths.
#include <gtest/gtest.h>

#include <cstring>

#include "kvserve/kvserve.h"

extern "C" int kvs_capi_smoke(char* why, size_t why_size);

TEST(CApi, PagedDecodeFromC) {
  char why[512] = "";
  EXPECT_EQ(kvs_capi_smoke(why, sizeof why), 0) << why;
}

TEST(CApi, NullArgumentsAreErrorsNotCrashes) {
  kvs_error err;
  kvs_batch_paged_decode_plan* plan = nullptr;
  EXPECT_EQ(kvs_batch_paged_decode_create(nullptr, {KVS_DEVICE_CPU, 0}, &plan, &err), KVS_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(err.message, "desc"), nullptr) << err.message;
  EXPECT_EQ(kvs_batch_paged_decode_run(nullptr, nullptr, nullptr, 0, nullptr, &err), KVS_INVALID_ARGUMENT);
  kvs_batch_paged_decode_args args{};
  EXPECT_EQ(kvs_batch_paged_decode_run(nullptr, &args, nullptr, 0, nullptr, &err), KVS_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(err.message, "plan"), nullptr) << err.message;
  EXPECT_EQ(kvs_batch_paged_decode_workspace_bytes(nullptr), 0u);
  kvs_batch_paged_decode_destroy(nullptr);
}
