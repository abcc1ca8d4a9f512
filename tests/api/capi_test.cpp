// The C ABI, driven from C (capi_smoke.c) and from C++: the error record, and
// the BlockManager handle against the C++ BlockManager. The per-op
// translations are checked in capi_ops_test.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "capi/capi.hpp"
#include "kvserve/block_manager.hpp"
#include "kvserve/norm.hpp"
#include "kvserve/kvserve.h"

extern "C" int kvs_capi_smoke(char* why, size_t why_size);
extern "C" int kvs_capi_block_manager_smoke(char* why, size_t why_size);

namespace {

using namespace kvserve;

void expect_named_error(kvs_status_code rc, const kvs_error& err, kvs_status_code code, const std::string& name) {
  EXPECT_EQ(rc, code) << err.message;
  EXPECT_NE(std::strstr(err.message, name.c_str()), nullptr) << "expected " << name << " in: " << err.message;
}

TEST(CApi, PagedDecodeFromC) {
  char why[512] = "";
  EXPECT_EQ(kvs_capi_smoke(why, sizeof why), 0) << why;
}

TEST(CApi, BlockManagerFromC) {
  char why[512] = "";
  EXPECT_EQ(kvs_capi_block_manager_smoke(why, sizeof why), 0) << why;
}

// Every entry point fills the record through capi::report / capi::guarded.
TEST(CApi, ErrorRecordCarriesCodeSizesAndMessage) {
  kvs_error err{};
  EXPECT_EQ(capi::report(Status::workspace_too_small(1024, 16), &err), KVS_WORKSPACE_TOO_SMALL);
  EXPECT_EQ(err.code, KVS_WORKSPACE_TOO_SMALL);
  EXPECT_EQ(err.workspace_needed, 1024u);
  EXPECT_EQ(err.workspace_got, 16u);
  EXPECT_NE(std::strstr(err.message, "1024"), nullptr) << err.message;

  EXPECT_EQ(capi::report(Status::resource_exhausted(std::string(2000, 'x')), &err), KVS_RESOURCE_EXHAUSTED);
  EXPECT_EQ(std::strlen(err.message), sizeof err.message - 1);  // truncated, NUL-terminated
  EXPECT_EQ(capi::report(Status::ok(), nullptr), KVS_OK);

  EXPECT_EQ(capi::guarded(&err, []() -> Status { throw std::runtime_error("boom"); }), KVS_INTERNAL);
  EXPECT_NE(std::strstr(err.message, "boom"), nullptr) << err.message;
  EXPECT_EQ(capi::guarded(&err, []() -> Status { throw 7; }), KVS_INTERNAL);
}

// An f32 RmsNorm plan on the CPU through the C ABI (NULL when create fails).
kvs_rms_norm_plan* make_rms_norm(int hidden_size) {
  const kvs_rms_norm_desc desc{.hidden_size = hidden_size, .dtype = KVS_F32, .eps = 1e-6f, .weight_offset = 0.f,
                               .fused_add = 0};
  kvs_rms_norm_plan* plan = nullptr;
  kvs_error err{};
  EXPECT_EQ(kvs_rms_norm_create(&desc, {KVS_DEVICE_CPU, 0}, &plan, &err), KVS_OK) << err.message;
  return plan;
}

TEST(CApi, KernelKeyIsTruncatedToTheBuffer) {
  kvs_rms_norm_plan* plan = make_rms_norm(64);
  ASSERT_NE(plan, nullptr);
  const std::size_t length = kvs_rms_norm_kernel(plan, nullptr, 0);
  ASSERT_GT(length, 4u);
  std::vector<char> full(length + 1), cut(5, '#');
  EXPECT_EQ(kvs_rms_norm_kernel(plan, full.data(), full.size()), length);
  EXPECT_EQ(kvs_rms_norm_kernel(plan, cut.data(), cut.size()), length);
  EXPECT_EQ(std::string(cut.data()), std::string(full.data(), 4));
  kvs_rms_norm_destroy(plan);
}

// A contiguous f32 kvs_tensor over host memory.
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

// can_implement runs run()'s argument checks and nothing else; precision
// reports the selected kernel's promise, as the C++ plan does.
TEST(CApi, CanImplementChecksArgumentsWithoutRunning) {
  kvs_rms_norm_plan* plan = make_rms_norm(8);
  ASSERT_NE(plan, nullptr);
  kvs_error err{};
  std::vector<float> x(16, 1.f), w(8, 1.f), out(16, -7.f);
  kvs_rms_norm_args args{.x = f32_view(x.data(), {2, 8}), .weight = f32_view(w.data(), {8}), .residual = {},
                         .out = f32_view(out.data(), {2, 8})};
  EXPECT_EQ(kvs_rms_norm_can_implement(plan, &args, &err), KVS_OK) << err.message;
  EXPECT_EQ(out, std::vector<float>(16, -7.f));  // nothing ran
  args.out = f32_view(out.data(), {2, 7});
  expect_named_error(kvs_rms_norm_can_implement(plan, &args, &err), err, KVS_INVALID_ARGUMENT, "'out'");
  expect_named_error(kvs_rms_norm_can_implement(plan, nullptr, &err), err, KVS_INVALID_ARGUMENT, "'args'");
  expect_named_error(kvs_rms_norm_can_implement(nullptr, &args, &err), err, KVS_INVALID_ARGUMENT, "'plan'");

  auto cpp = RmsNormPlan::create(RmsNormDesc{.hidden_size = 8, .dtype = DType::f32}, Device::cpu());
  ASSERT_TRUE(cpp);
  const Precision& want = cpp->kernel().precision;
  kvs_precision got{};
  ASSERT_EQ(kvs_rms_norm_precision(plan, &got, &err), KVS_OK) << err.message;
  EXPECT_EQ(got.math, static_cast<kvs_dtype>(want.math));
  EXPECT_EQ(got.accumulator, static_cast<kvs_dtype>(want.accumulator));
  EXPECT_EQ(got.deterministic, want.deterministic ? 1 : 0);
  EXPECT_EQ(got.batch_invariant, want.batch_invariant ? 1 : 0);
  expect_named_error(kvs_rms_norm_precision(plan, nullptr, &err), err, KVS_INVALID_ARGUMENT, "'out'");
  expect_named_error(kvs_rms_norm_precision(nullptr, &got, &err), err, KVS_INVALID_ARGUMENT, "'plan'");
  kvs_rms_norm_destroy(plan);

  EXPECT_EQ(kvs_cuda_backend_built(), cuda_backend_built() ? 1 : 0);
  EXPECT_EQ(kvs_cuda_device_count(), cuda_device_count());
}

TEST(CApi, PlanOnAMissingDeviceIsAnError) {
  const kvs_rms_norm_desc desc{.hidden_size = 64, .dtype = KVS_F32, .eps = 1e-6f, .weight_offset = 0.f,
                               .fused_add = 0};
  kvs_rms_norm_plan* plan = nullptr;
  kvs_error err{};
  EXPECT_NE(kvs_rms_norm_create(&desc, {KVS_DEVICE_CPU, 3}, &plan, &err), KVS_OK);
  EXPECT_EQ(plan, nullptr);
  EXPECT_NE(kvs_rms_norm_create(&desc, {KVS_DEVICE_CUDA, 1000}, &plan, &err), KVS_OK);
  EXPECT_EQ(plan, nullptr);
}

// ------------------------------------------------------- BlockManager ----

using ManagerPtr = std::unique_ptr<kvs_block_manager, void (*)(kvs_block_manager*)>;

ManagerPtr make_manager(std::int64_t num_pages, int page_size) {
  kvs_block_manager* m = nullptr;
  kvs_error err{};
  EXPECT_EQ(kvs_block_manager_create(num_pages, page_size, &m, &err), KVS_OK) << err.message;
  return ManagerPtr(m, kvs_block_manager_destroy);
}

// A kvs_page_table's two calls: the size query, then the copy into buffers of that size.
template <class Call>
PageTable read_table(std::int64_t rows, Call&& call) {
  kvs_page_table query{};
  kvs_error err{};
  EXPECT_EQ(call(&query, &err), KVS_OK) << err.message;
  PageTable t;
  t.indptr.resize(static_cast<std::size_t>(rows + 1));
  t.indices.resize(static_cast<std::size_t>(query.num_indices));
  t.last_page_len.resize(static_cast<std::size_t>(rows));
  kvs_page_table table{.indptr = t.indptr.data(), .indices = t.indices.data(), .indices_capacity = query.num_indices,
                       .last_page_len = t.last_page_len.data(), .num_indices = 0};
  EXPECT_EQ(call(&table, &err), KVS_OK) << err.message;
  EXPECT_EQ(table.num_indices, query.num_indices);
  return t;
}

PageTable c_page_table(const kvs_block_manager* m, const std::vector<SeqId>& seqs, kvs_table_part part) {
  const auto rows = static_cast<std::int64_t>(seqs.size());
  return read_table(rows, [&](kvs_page_table* table, kvs_error* err) {
    return kvs_block_manager_page_table(m, seqs.data(), rows, part, table, err);
  });
}

void expect_same(const PageTable& got, const PageTable& want) {
  EXPECT_EQ(got.indptr, want.indptr);
  EXPECT_EQ(got.indices, want.indices);
  EXPECT_EQ(got.last_page_len, want.last_page_len);
}

// The same operations on a C++ manager and a C handle leave the same pages and tables.
TEST(CApiBlockManager, MatchesTheCppManager) {
  auto cpp_made = BlockManager::create(12, 4);
  ASSERT_TRUE(cpp_made);
  BlockManager& cpp = *cpp_made;
  const ManagerPtr c = make_manager(12, 4);
  ASSERT_NE(c, nullptr);
  kvs_error err{};
  const auto check = [&](kvs_status_code rc, const Status& s) {
    ASSERT_TRUE(s) << s.to_string();
    ASSERT_EQ(rc, KVS_OK) << err.message;
  };
  const auto check_id = [&](kvs_status_code rc, const kvs_seq_id& id, const Result<SeqId>& want) {
    ASSERT_TRUE(want) << want.status().to_string();
    ASSERT_EQ(rc, KVS_OK) << err.message;
    EXPECT_EQ(id, *want);
  };

  kvs_seq_id sys = -1, child = -1, child2 = -1;
  check_id(kvs_block_manager_add_sequence(c.get(), 6, &sys, &err), sys, cpp.add_sequence(6));
  check_id(kvs_block_manager_fork(c.get(), sys, -1, &child, &err), child, cpp.fork(sys));
  check_id(kvs_block_manager_fork(c.get(), sys, 5, &child2, &err), child2, cpp.fork(sys, 5));
  check(kvs_block_manager_append_tokens(c.get(), child, 3, &err), cpp.append_tokens(child, 3));
  const std::vector<SeqId> running{sys, child, child2};
  check(kvs_block_manager_append_tokens_batch(c.get(), running.data(), 3, 2, &err), cpp.append_tokens(running, 2));
  check(kvs_block_manager_truncate(c.get(), child, 7, &err), cpp.truncate(child, 7));
  EXPECT_EQ(kvs_block_manager_free_pages(c.get()), cpp.free_pages());

  for (const auto& [part, cpp_part] : {std::pair{KVS_TABLE_ALL, TablePart::all},
                                       std::pair{KVS_TABLE_PREFIX, TablePart::prefix},
                                       std::pair{KVS_TABLE_SUFFIX, TablePart::suffix}}) {
    SCOPED_TRACE(static_cast<int>(part));
    expect_same(c_page_table(c.get(), running, part), *cpp.page_table(running, cpp_part));
  }

  // Cascade tables: {child, child2} share sys's first page; sys alone forms a group with no prefix.
  const std::vector<kvs_seq_id> members{child, child2, sys};
  const std::vector<std::int64_t> group_sizes{2, 1};
  const std::vector<std::vector<SeqId>> groups{{child, child2}, {sys}};
  const auto want = cpp.cascade_tables(groups);
  ASSERT_TRUE(want) << want.status().to_string();
  std::vector<std::int32_t> group_indptr(3, -1);
  const auto cascade = [&](kvs_page_table* prefix, kvs_page_table* suffix) {
    return kvs_block_manager_cascade_tables(c.get(), members.data(), group_sizes.data(), 2, group_indptr.data(),
                                            prefix, suffix, &err);
  };
  kvs_page_table suffix_query{};
  const PageTable prefix = read_table(2, [&](kvs_page_table* table, kvs_error*) { return cascade(table, &suffix_query); });
  kvs_page_table prefix_query{};
  const PageTable suffix = read_table(3, [&](kvs_page_table* table, kvs_error*) { return cascade(&prefix_query, table); });
  expect_same(prefix, want->prefix);
  expect_same(suffix, want->suffix);
  EXPECT_EQ(group_indptr, want->group_indptr);
  EXPECT_EQ(suffix_query.num_indices, static_cast<std::int64_t>(want->suffix.indices.size()));

  check(kvs_block_manager_release(c.get(), child2, &err), cpp.release(child2));
  EXPECT_EQ(kvs_block_manager_free_pages(c.get()), cpp.free_pages());
}

TEST(CApiBlockManager, ErrorsAreNamedAndChangeNothing) {
  const ManagerPtr m = make_manager(4, 4);
  ASSERT_NE(m, nullptr);
  kvs_error err{};
  kvs_seq_id seq = -1;
  ASSERT_EQ(kvs_block_manager_add_sequence(m.get(), 5, &seq, &err), KVS_OK) << err.message;
  EXPECT_EQ(kvs_block_manager_free_pages(m.get()), 2);

  EXPECT_EQ(kvs_block_manager_append_tokens(m.get(), seq, 100, &err), KVS_RESOURCE_EXHAUSTED);
  EXPECT_EQ(err.code, KVS_RESOURCE_EXHAUSTED);
  kvs_seq_id other = -1;
  EXPECT_EQ(kvs_block_manager_add_sequence(m.get(), 100, &other, &err), KVS_RESOURCE_EXHAUSTED);
  EXPECT_EQ(kvs_block_manager_free_pages(m.get()), 2);
  EXPECT_EQ(kvs_block_manager_release(m.get(), seq + 100, &err), KVS_INVALID_ARGUMENT);
  EXPECT_EQ(kvs_block_manager_truncate(m.get(), seq, -1, &err), KVS_INVALID_ARGUMENT);
  EXPECT_EQ(kvs_block_manager_fork(m.get(), seq, -2, &other, &err), KVS_INVALID_ARGUMENT);

  expect_named_error(kvs_block_manager_create(4, 4, nullptr, &err), err, KVS_INVALID_ARGUMENT, "'manager'");
  kvs_block_manager* none = nullptr;
  expect_named_error(kvs_block_manager_create(0, 4, &none, &err), err, KVS_INVALID_ARGUMENT, "num_pages");
  EXPECT_EQ(none, nullptr);
  expect_named_error(kvs_block_manager_append_tokens(nullptr, seq, 1, &err), err, KVS_INVALID_ARGUMENT, "'manager'");
  expect_named_error(kvs_block_manager_add_sequence(m.get(), 1, nullptr, &err), err, KVS_INVALID_ARGUMENT, "'seq'");
  expect_named_error(kvs_block_manager_fork(m.get(), seq, -1, nullptr, &err), err, KVS_INVALID_ARGUMENT, "'child'");
  expect_named_error(kvs_block_manager_append_tokens_batch(m.get(), nullptr, 2, 1, &err), err, KVS_INVALID_ARGUMENT,
                     "'seqs'");
  expect_named_error(kvs_block_manager_append_tokens_batch(m.get(), &seq, -1, 1, &err), err, KVS_INVALID_ARGUMENT,
                     "'num_seqs'");
  EXPECT_EQ(kvs_block_manager_free_pages(nullptr), 0);
  kvs_block_manager_destroy(nullptr);

  // Tables: a bad part, a buffer too small, a missing table, a negative group size.
  std::vector<std::int32_t> indptr(2), indices(1), last(1);
  kvs_page_table table{.indptr = indptr.data(), .indices = indices.data(), .indices_capacity = 1,
                       .last_page_len = last.data(), .num_indices = 0};
  expect_named_error(kvs_block_manager_page_table(m.get(), &seq, 1, static_cast<kvs_table_part>(5), &table, &err), err,
                     KVS_INVALID_ARGUMENT, "'part'");
  expect_named_error(kvs_block_manager_page_table(m.get(), &seq, 1, KVS_TABLE_ALL, &table, &err), err,
                     KVS_INVALID_ARGUMENT, "'table.indices'");
  EXPECT_EQ(table.num_indices, 0);  // nothing written
  expect_named_error(kvs_block_manager_page_table(m.get(), &seq, 1, KVS_TABLE_ALL, nullptr, &err), err,
                     KVS_INVALID_ARGUMENT, "'table'");
  const std::int64_t sizes[1] = {-1};
  kvs_page_table prefix{}, suffix{};
  expect_named_error(kvs_block_manager_cascade_tables(m.get(), &seq, sizes, 1, nullptr, &prefix, &suffix, &err), err,
                     KVS_INVALID_ARGUMENT, "'group_sizes[0]'");
}

// The queries answer what the C++ manager answers.
TEST(CApiBlockManager, QueriesMatchTheCppManager) {
  auto cpp_made = BlockManager::create(10, 4);
  ASSERT_TRUE(cpp_made);
  BlockManager& cpp = *cpp_made;
  const ManagerPtr c = make_manager(10, 4);
  ASSERT_NE(c, nullptr);
  kvs_error err{};
  kvs_seq_id parent = -1, child = -1;
  ASSERT_EQ(kvs_block_manager_add_sequence(c.get(), 9, &parent, &err), KVS_OK) << err.message;
  ASSERT_EQ(kvs_block_manager_fork(c.get(), parent, 8, &child, &err), KVS_OK) << err.message;
  ASSERT_EQ(kvs_block_manager_append_tokens(c.get(), child, 3, &err), KVS_OK) << err.message;
  const SeqId cpp_parent = *cpp.add_sequence(9), cpp_child = *cpp.fork(cpp_parent, 8);
  ASSERT_TRUE(cpp.append_tokens(cpp_child, 3));

  EXPECT_EQ(kvs_block_manager_num_pages(c.get()), cpp.num_pages());
  EXPECT_EQ(kvs_block_manager_page_size(c.get()), cpp.page_size());
  EXPECT_EQ(kvs_block_manager_num_sequences(c.get()), cpp.num_sequences());
  for (std::int64_t page = 0; page < cpp.num_pages(); ++page) {
    std::int32_t count = -1;
    ASSERT_EQ(kvs_block_manager_refcount(c.get(), page, &count, &err), KVS_OK) << err.message;
    EXPECT_EQ(count, *cpp.refcount(page)) << "page " << page;
  }
  std::int64_t pages = -1;
  ASSERT_EQ(kvs_block_manager_pages_needed(c.get(), child, 6, &pages, &err), KVS_OK) << err.message;
  EXPECT_EQ(pages, *cpp.pages_needed(cpp_child, 6));
  kvs_sequence_info info{};
  ASSERT_EQ(kvs_block_manager_sequence(c.get(), child, &info, &err), KVS_OK) << err.message;
  const auto want = *cpp.sequence(cpp_child);
  EXPECT_EQ(info.length, want.length);
  EXPECT_EQ(info.prefix_pages, want.prefix_pages);
  EXPECT_EQ(info.num_pages, static_cast<std::int64_t>(want.pages.size()));

  std::int32_t count = 0;
  expect_named_error(kvs_block_manager_refcount(c.get(), 10, &count, &err), err, KVS_INVALID_ARGUMENT, "page");
  expect_named_error(kvs_block_manager_refcount(c.get(), 0, nullptr, &err), err, KVS_INVALID_ARGUMENT, "'refcount'");
  expect_named_error(kvs_block_manager_pages_needed(c.get(), 99, 1, &pages, &err), err, KVS_INVALID_ARGUMENT, "seq");
  expect_named_error(kvs_block_manager_sequence(c.get(), child, nullptr, &err), err, KVS_INVALID_ARGUMENT, "'info'");
  expect_named_error(kvs_block_manager_sequence(nullptr, child, &info, &err), err, KVS_INVALID_ARGUMENT, "'manager'");
  EXPECT_EQ(kvs_block_manager_num_pages(nullptr), 0);
  EXPECT_EQ(kvs_block_manager_page_size(nullptr), 0);
  EXPECT_EQ(kvs_block_manager_num_sequences(nullptr), 0);
}

// A C caller may store any int in an enum field; C++ may not form such an
// enum value except through its bytes.
template <class E>
void store_raw(E* field, int value) {
  static_assert(sizeof(E) == sizeof(int));
  std::memcpy(field, &value, sizeof value);
}

// Finding F1 of the fuzz targets (fuzz_capi, docs/reliability.md): kvs_device.kind was compared as a C++ enum (UBSan:
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
