// The C ABI is a translation of the C++ API, nothing more: for every op the
// same random inputs go through the C++ plan and through the C entry points on
// the CPU, and the outputs must be bit-identical, with the same kernel key and
// workspace size. Every descriptor field is set to a non-default value where it
// has one, so a field the translation drops or swaps changes the result. Each
// op's entry points also answer NULL pointers and a bad descriptor field with
// an error naming it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "harness/harness.hpp"
#include "kvserve/attention.hpp"
#include "kvserve/gdn.hpp"
#include "kvserve/kv_cache.hpp"
#include "kvserve/kvserve.h"
#include "kvserve/merge.hpp"
#include "kvserve/mla.hpp"
#include "kvserve/norm.hpp"
#include "kvserve/penalty.hpp"
#include "kvserve/sampling.hpp"
#include "kvserve/speculative.hpp"

namespace {

using namespace kvserve;

constexpr kvs_device kCpu{KVS_DEVICE_CPU, 0};

// ------------------------------------------------------------ tensors ----

// A contiguous host tensor that both APIs can view.
struct HostTensor {
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::vector<unsigned char> bytes;

  std::int64_t numel() const {
    return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
  }
  TensorView view() const {
    TensorView v;
    v.data = const_cast<unsigned char*>(bytes.data());
    v.dtype = dtype;
    v.rank = static_cast<int>(shape.size());
    std::int64_t stride = 1;
    for (int i = v.rank - 1; i >= 0; --i) {
      v.shape[i] = shape[i];
      v.strides[i] = stride;
      stride *= shape[i];
    }
    return v;
  }
};
using Tensors = std::vector<HostTensor>;

HostTensor zeros(DType dtype, std::vector<std::int64_t> shape) {
  HostTensor t{dtype, std::move(shape), {}};
  t.bytes.resize(static_cast<std::size_t>(t.numel()) * size_of(dtype));
  return t;
}

HostTensor random_tensor(std::mt19937_64& rng, DType dtype, std::vector<std::int64_t> shape, double lo = -1,
                         double hi = 1) {
  HostTensor t = zeros(dtype, std::move(shape));
  std::uniform_real_distribution<double> u(lo, hi);
  for (std::int64_t i = 0; i < t.numel(); ++i) store_from_float(dtype, t.bytes.data(), i, static_cast<float>(u(rng)));
  return t;
}

// An output before the run: NaN, or INT32_MIN for int32, so an unwritten output shows.
HostTensor poisoned(DType dtype, std::vector<std::int64_t> shape) {
  HostTensor t = zeros(dtype, std::move(shape));
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::int32) {
      const std::int32_t v = std::numeric_limits<std::int32_t>::min();
      std::memcpy(t.bytes.data() + i * sizeof v, &v, sizeof v);
    } else {
      store_from_float(dtype, t.bytes.data(), i, std::numeric_limits<float>::quiet_NaN());
    }
  }
  return t;
}

HostTensor int_tensor(const std::vector<std::int32_t>& values, std::vector<std::int64_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<std::int64_t>(values.size())};
  HostTensor t = zeros(DType::int32, std::move(shape));
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

HostTensor random_ints(std::mt19937_64& rng, std::vector<std::int64_t> shape, std::int32_t lo, std::int32_t hi) {
  HostTensor t = zeros(DType::int32, std::move(shape));
  std::uniform_int_distribution<std::int32_t> u(lo, hi);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const std::int32_t v = u(rng);
    std::memcpy(t.bytes.data() + i * sizeof v, &v, sizeof v);
  }
  return t;
}

kvs_tensor to_c(const TensorView& v) {
  kvs_tensor t{};
  t.data = v.data;
  t.dtype = static_cast<kvs_dtype>(v.dtype);
  t.rank = v.rank;
  for (int i = 0; i < v.rank; ++i) {
    t.shape[i] = v.shape[i];
    t.strides[i] = v.strides[i];
  }
  t.device = kCpu;
  return t;
}
kvs_tensor to_c(const HostTensor& t) { return to_c(t.view()); }

// --------------------------------------------------------- page tables ----

// A CSR page table over requests of the given lengths, with its tensors.
struct Table {
  std::vector<std::int32_t> indptr{0}, indices, last_page_len;
  HostTensor indptr_t, indices_t, last_t;
  PagedKvLengths lengths() const { return {indptr, last_page_len}; }
};

// Takes each request's pages from the front of *free_pages (a shuffled pool).
Table make_table(const std::vector<std::int64_t>& lens, int page_size, std::vector<std::int32_t>* free_pages) {
  Table t;
  for (std::int64_t len : lens) {
    const std::int64_t pages = (len + page_size - 1) / page_size;
    t.indices.insert(t.indices.end(), free_pages->begin(), free_pages->begin() + pages);
    free_pages->erase(free_pages->begin(), free_pages->begin() + pages);
    t.indptr.push_back(static_cast<std::int32_t>(t.indices.size()));
    t.last_page_len.push_back(pages == 0 ? 0 : static_cast<std::int32_t>(len - (pages - 1) * page_size));
  }
  t.indptr_t = int_tensor(t.indptr);
  t.indices_t = int_tensor(t.indices);
  t.last_t = int_tensor(t.last_page_len);
  return t;
}

std::vector<std::int32_t> shuffled_pages(std::mt19937_64& rng, std::int32_t num_pages) {
  std::vector<std::int32_t> pages(static_cast<std::size_t>(num_pages));
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), rng);
  return pages;
}

PagedKv paged(const HostTensor& k, const HostTensor& v, const Table& t) {
  return {k.view(), v.view(), t.indptr_t.view(), t.indices_t.view(), t.last_t.view()};
}
kvs_paged_kv c_paged(const HostTensor& k, const HostTensor& v, const Table& t) {
  return {.k_pages = to_c(k), .v_pages = to_c(v), .indptr = to_c(t.indptr_t), .indices = to_c(t.indices_t),
          .last_page_len = to_c(t.last_t)};
}

// The C mirror of a paged KV descriptor (its scales point into `kv`).
kvs_paged_kv_desc c_desc(const PagedKvDesc& kv) {
  return {.page_size = kv.page_size, .num_pages = kv.num_pages, .num_kv_heads = kv.num_kv_heads,
          .head_dim = kv.head_dim, .dtype = static_cast<kvs_dtype>(kv.dtype),
          .layout = kv.layout == KvLayout::HND ? KVS_HND : KVS_NHD,
          .k_scale = kv.k_scale.empty() ? nullptr : kv.k_scale.data(),
          .num_k_scale = static_cast<std::int32_t>(kv.k_scale.size()),
          .v_scale = kv.v_scale.empty() ? nullptr : kv.v_scale.data(),
          .num_v_scale = static_cast<std::int32_t>(kv.v_scale.size())};
}

// ----------------------------------------------------- the comparison ----

// One op's C entry points.
template <class CPlan, class CDesc, class CArgs>
struct CEntryPoints {
  using Plan = CPlan;
  using Desc = CDesc;
  using Args = CArgs;
  kvs_status_code (*create)(const CDesc*, kvs_device, CPlan**, kvs_error*);
  kvs_status_code (*run)(const CPlan*, const CArgs*, void*, std::size_t, void*, kvs_error*);
  std::size_t (*workspace_bytes)(const CPlan*);
  std::size_t (*kernel)(const CPlan*, char*, std::size_t);
  void (*destroy)(CPlan*);
};
template <class CPlan, class CDesc, class CArgs>
CEntryPoints<CPlan, CDesc, CArgs> entry_points(kvs_status_code (*create)(const CDesc*, kvs_device, CPlan**, kvs_error*),
                                               kvs_status_code (*run)(const CPlan*, const CArgs*, void*, std::size_t,
                                                                      void*, kvs_error*),
                                               std::size_t (*workspace_bytes)(const CPlan*),
                                               std::size_t (*kernel)(const CPlan*, char*, std::size_t),
                                               void (*destroy)(CPlan*)) {
  return {create, run, workspace_bytes, kernel, destroy};
}
#define KVS_C_ENTRY_POINTS(name)                                                                          \
  entry_points(kvs_##name##_create, kvs_##name##_run, kvs_##name##_workspace_bytes, kvs_##name##_kernel, \
               kvs_##name##_destroy)

template <class C>
using CPlanPtr = std::unique_ptr<typename C::Plan, void (*)(typename C::Plan*)>;

template <class C>
CPlanPtr<C> make_c_plan(const C& c, const typename C::Desc& desc) {
  typename C::Plan* plan = nullptr;
  kvs_error err{};
  const kvs_status_code rc = c.create(&desc, kCpu, &plan, &err);
  EXPECT_EQ(rc, KVS_OK) << err.message;
  return CPlanPtr<C>(plan, c.destroy);
}

// `rc` is `code`, and err says so and names `name` (quoted, as the library quotes names).
void expect_error(kvs_status_code rc, const kvs_error& err, kvs_status_code code, const std::string& name) {
  EXPECT_EQ(rc, code) << err.message;
  EXPECT_EQ(err.code, code);
  EXPECT_NE(std::strstr(err.message, ("'" + name + "'").c_str()), nullptr) << "expected '" << name << "' in: "
                                                                           << err.message;
}

// A tensor argument of an op, reached by the same path ("kv.indptr") in its
// C++ and its C arguments.
template <class Op, class C>
struct TensorField {
  std::string name;
  std::function<TensorView&(typename Op::Args&)> cpp;
  std::function<kvs_tensor&(typename C::Args&)> c;
};
template <class Get>
struct TensorPath {
  const char* name;
  Get get;
};
#define KVS_TENSOR(path) TensorPath{#path, [](auto& a) -> auto& { return a.path; }}
#define KVS_PAGED(kv) \
  KVS_TENSOR(kv.k_pages), KVS_TENSOR(kv.v_pages), KVS_TENSOR(kv.indptr), KVS_TENSOR(kv.indices), \
      KVS_TENSOR(kv.last_page_len)

// One op run both ways.
template <class Op, class C>
struct Case {
  C c;
  typename Op::Desc desc;
  typename C::Desc cdesc;
  Tensors outputs;  // contents before the run: poison, or the cache an append writes into
  std::function<typename Op::Args(Tensors&)> args;
  std::function<typename C::Args(Tensors&)> cargs;
  // A descriptor field broken in a copy of cdesc, and the name the error gives it.
  std::string bad_field;
  std::function<void(typename C::Desc&)> break_field;
  // Ops with prepare(): the same host metadata through both APIs.
  std::function<Status(Plan<Op>&, Workspace)> prepare;
  std::function<kvs_status_code(typename C::Plan*, void*, std::size_t, kvs_error*)> cprepare;
  // Every tensor argument (optional ones too).
  std::vector<TensorField<Op, C>> tensors;
};

template <class Op, class C, class... Gets>
void add_tensors(Case<Op, C>& t, TensorPath<Gets>... paths) {
  (t.tensors.push_back({paths.name, [get = paths.get](typename Op::Args& a) -> TensorView& { return get(a); },
                        [get = paths.get](typename C::Args& a) -> kvs_tensor& { return get(a); }}),
   ...);
}

// A view of rank 7, 64, -1 or 100000 in any tensor argument is refused through
// both APIs with the same InvalidArgument naming the argument and the rank,
// before anything reads past the 6-entry shape (ASan in CI would catch a read).
// An absent optional argument gets a data pointer so that it counts as given.
template <class Op, class C>
void expect_bad_ranks_refused(const Case<Op, C>& t, const Plan<Op>& cpp, const typename C::Plan* plan, Workspace ws) {
  // Every argument is listed: the Args are tensors (and, for some, 16 bytes of host seeds).
  ASSERT_EQ(sizeof(typename Op::Args) / sizeof(TensorView), t.tensors.size()) << "a tensor argument is not listed";
  static unsigned char dummy[64];
  for (const TensorField<Op, C>& field : t.tensors) {
    for (int rank : {7, 64, -1, 100000}) {
      SCOPED_TRACE(field.name + " of rank " + std::to_string(rank));
      Tensors cpp_out = t.outputs, c_out = t.outputs;
      typename Op::Args a = t.args(cpp_out);
      typename C::Args ca = t.cargs(c_out);
      TensorView& v = field.cpp(a);
      kvs_tensor& cv = field.c(ca);
      if (!v.defined()) v.data = cv.data = dummy;
      v.rank = cv.rank = rank;
      const Status s = cpp.run(a, ws);
      test::expect_rejected(s, field.name);
      EXPECT_NE(s.message().find("rank " + std::to_string(rank)), std::string::npos) << s.message();
      kvs_error err{};
      EXPECT_EQ(t.c.run(plan, &ca, ws.data, ws.bytes, nullptr, &err), KVS_INVALID_ARGUMENT);
      EXPECT_EQ(std::string(err.message), s.message());
      for (std::size_t i = 0; i < t.outputs.size(); ++i) {
        EXPECT_EQ(cpp_out[i].bytes, t.outputs[i].bytes) << "a refused run wrote output " << i;
        EXPECT_EQ(c_out[i].bytes, t.outputs[i].bytes) << "a refused C run wrote output " << i;
      }
    }
  }
}
template <class Op, class C>
Case<Op, C> make_case(const C& c) {
  Case<Op, C> t{};
  t.c = c;
  return t;
}

template <class Op, class C>
void expect_translation(const Case<Op, C>& t) {
  auto cpp = Plan<Op>::create(t.desc, Device::cpu());
  ASSERT_TRUE(cpp) << cpp.status().to_string();
  const CPlanPtr<C> plan = make_c_plan(t.c, t.cdesc);
  ASSERT_NE(plan, nullptr);

  char key[512];
  ASSERT_EQ(t.c.kernel(plan.get(), key, sizeof key), cpp->kernel().key().size());
  EXPECT_EQ(std::string(key), cpp->kernel().key());
  const std::size_t ws = cpp->workspace_bytes();
  EXPECT_EQ(t.c.workspace_bytes(plan.get()), ws);
  std::vector<std::max_align_t> cpp_ws(ws / sizeof(std::max_align_t) + 1), c_ws(cpp_ws.size());

  kvs_error err{};
  if (t.prepare) {
    const Status s = t.prepare(*cpp, Workspace{cpp_ws.data(), ws});
    ASSERT_TRUE(s) << s.to_string();
    ASSERT_EQ(t.cprepare(plan.get(), c_ws.data(), ws, &err), KVS_OK) << err.message;
  }
  Tensors cpp_out = t.outputs, c_out = t.outputs;
  const Status s = cpp->run(t.args(cpp_out), Workspace{cpp_ws.data(), ws});
  ASSERT_TRUE(s) << s.to_string();
  const typename C::Args cargs = t.cargs(c_out);
  ASSERT_EQ(t.c.run(plan.get(), &cargs, c_ws.data(), ws, nullptr, &err), KVS_OK) << err.message;
  for (std::size_t i = 0; i < t.outputs.size(); ++i) {
    EXPECT_NE(cpp_out[i].bytes, t.outputs[i].bytes) << "output " << i << " was not written";
    EXPECT_EQ(c_out[i].bytes, cpp_out[i].bytes) << "output " << i << " differs between the C and C++ APIs";
  }

  expect_bad_ranks_refused(t, *cpp, plan.get(), Workspace{cpp_ws.data(), ws});

  // Errors: each names what is wrong, and a failed create leaves the plan NULL.
  typename C::Plan* none = plan.get();
  expect_error(t.c.create(nullptr, kCpu, &none, &err), err, KVS_INVALID_ARGUMENT, "desc");
  EXPECT_EQ(none, nullptr);
  expect_error(t.c.create(&t.cdesc, kCpu, nullptr, &err), err, KVS_INVALID_ARGUMENT, "plan");
  typename C::Desc bad = t.cdesc;
  t.break_field(bad);
  none = plan.get();
  expect_error(t.c.create(&bad, kCpu, &none, &err), err, KVS_INVALID_ARGUMENT, t.bad_field);
  EXPECT_EQ(none, nullptr);
  EXPECT_EQ(t.c.create(&bad, kCpu, &none, nullptr), KVS_INVALID_ARGUMENT);  // err is optional
  expect_error(t.c.run(nullptr, &cargs, c_ws.data(), ws, nullptr, &err), err, KVS_INVALID_ARGUMENT, "plan");
  expect_error(t.c.run(plan.get(), nullptr, c_ws.data(), ws, nullptr, &err), err, KVS_INVALID_ARGUMENT, "args");
  EXPECT_EQ(t.c.workspace_bytes(nullptr), 0u);
  EXPECT_EQ(t.c.kernel(nullptr, key, sizeof key), 0u);
  t.c.destroy(nullptr);
}

const AttentionParams kAttn{.sm_scale = 0.2f, .logits_soft_cap = 20.f, .window_left = 5};
const kvs_attention_params kCAttn{.sm_scale = 0.2f, .logits_soft_cap = 20.f, .window_left = 5};
// The C sentinels for "default scale, no cap, no window".
const kvs_attention_params kCDefaultAttn{.sm_scale = 0.f, .logits_soft_cap = 0.f, .window_left = -1};

// ----------------------------------------------------------- attention ----

TEST(CApiTranslation, BatchPagedDecode) {
  auto rng = test::make_rng();
  const PagedKvDesc kv{.page_size = 4, .num_pages = 10, .num_kv_heads = 2, .head_dim = 32,
                       .dtype = DType::fp8_e4m3, .layout = KvLayout::HND, .k_scale = {0.5f, 0.25f},
                       .v_scale = {0.75f}};
  std::vector<std::int32_t> free_pages = shuffled_pages(rng, 10);
  const Table table = make_table({7, 0, 13}, kv.page_size, &free_pages);
  const HostTensor k = random_tensor(rng, kv.dtype, {10, 2, 4, 32}), v = random_tensor(rng, kv.dtype, {10, 2, 4, 32});
  const HostTensor q = random_tensor(rng, DType::bf16, {3, 4, 32});

  auto t = make_case<BatchPagedDecode>(KVS_C_ENTRY_POINTS(batch_paged_decode));
  add_tensors(t, KVS_TENSOR(q), KVS_PAGED(kv), KVS_TENSOR(out), KVS_TENSOR(lse));
  t.desc = {.max_batch = 4, .num_qo_heads = 4, .kv = kv, .q_dtype = DType::bf16, .attn = kAttn, .kv_split_tokens = 8};
  t.cdesc = {.max_batch = 4, .num_qo_heads = 4, .kv = c_desc(kv), .q_dtype = KVS_BF16, .attn = kCAttn,
             .kv_split_tokens = 8};
  t.outputs = {poisoned(DType::bf16, {3, 4, 32}), poisoned(DType::f32, {3, 4})};
  t.args = [&](Tensors& o) {
    return BatchPagedDecodeArgs{.q = q.view(), .kv = paged(k, v, table), .out = o[0].view(), .lse = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_batch_paged_decode_args{.q = to_c(q), .kv = c_paged(k, v, table), .out = to_c(o[0]),
                                       .lse = to_c(o[1])};
  };
  t.bad_field = "kv.page_size";
  t.break_field = [](kvs_batch_paged_decode_desc& d) { d.kv.page_size = 0; };
  t.prepare = [&](BatchPagedDecodePlan& p, Workspace ws) { return p.prepare(table.lengths(), ws, {}); };
  t.cprepare = [&](kvs_batch_paged_decode_plan* p, void* ws, std::size_t bytes, kvs_error* err) {
    return kvs_batch_paged_decode_prepare(p, table.indptr.data(), table.last_page_len.data(), 3, ws, bytes, nullptr,
                                          err);
  };
  expect_translation(t);

  // prepare's host arrays and count are named when missing or negative.
  const auto plan = make_c_plan(t.c, t.cdesc);
  kvs_error err{};
  expect_error(kvs_batch_paged_decode_prepare(plan.get(), nullptr, table.last_page_len.data(), 3, nullptr, 0, nullptr,
                                              &err),
               err, KVS_INVALID_ARGUMENT, "indptr");
  expect_error(kvs_batch_paged_decode_prepare(plan.get(), table.indptr.data(), nullptr, 3, nullptr, 0, nullptr, &err),
               err, KVS_INVALID_ARGUMENT, "last_page_len");
  expect_error(kvs_batch_paged_decode_prepare(plan.get(), table.indptr.data(), table.last_page_len.data(), -1,
                                              nullptr, 0, nullptr, &err),
               err, KVS_INVALID_ARGUMENT, "batch");
  expect_error(kvs_batch_paged_decode_prepare(nullptr, table.indptr.data(), table.last_page_len.data(), 3, nullptr, 0,
                                              nullptr, &err),
               err, KVS_INVALID_ARGUMENT, "plan");
}

TEST(CApiTranslation, ValidatePageTable) {
  auto rng = test::make_rng();
  const PagedKvDesc kv{.page_size = 4, .num_pages = 6, .num_kv_heads = 1, .head_dim = 16, .dtype = DType::f32};
  std::vector<std::int32_t> free_pages = shuffled_pages(rng, 6);
  Table table = make_table({5, 8}, kv.page_size, &free_pages);
  const kvs_paged_kv_desc cdesc = c_desc(kv);
  const kvs_paged_kv ckv{.k_pages = {}, .v_pages = {}, .indptr = to_c(table.indptr_t),
                         .indices = to_c(table.indices_t), .last_page_len = to_c(table.last_t)};
  kvs_error err{};
  EXPECT_EQ(kvs_validate_page_table(&cdesc, &ckv, nullptr, &err), KVS_OK) << err.message;
  EXPECT_TRUE(validate_page_table(kv, paged({}, {}, table)));

  // A page id out of range: both APIs give the same message.
  const std::int32_t bad_page = 6;
  std::memcpy(table.indices_t.bytes.data() + 2 * sizeof bad_page, &bad_page, sizeof bad_page);
  const Status s = validate_page_table(kv, paged({}, {}, table));
  EXPECT_EQ(kvs_validate_page_table(&cdesc, &ckv, nullptr, &err), KVS_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(err.message), s.message());
  expect_error(kvs_validate_page_table(nullptr, &ckv, nullptr, &err), err, KVS_INVALID_ARGUMENT, "desc");
  expect_error(kvs_validate_page_table(&cdesc, nullptr, nullptr, &err), err, KVS_INVALID_ARGUMENT, "kv");
}

TEST(CApiTranslation, SingleDecode) {
  auto rng = test::make_rng();
  const HostTensor q = random_tensor(rng, DType::f32, {3, 4, 32});
  const HostTensor k = random_tensor(rng, DType::f32, {3, 2, 9, 32}), v = random_tensor(rng, DType::f32, {3, 2, 9, 32});
  const HostTensor kv_len = int_tensor({9, 3, 0});

  auto t = make_case<SingleDecode>(KVS_C_ENTRY_POINTS(single_decode));
  add_tensors(t, KVS_TENSOR(q), KVS_TENSOR(k), KVS_TENSOR(v), KVS_TENSOR(kv_len), KVS_TENSOR(out), KVS_TENSOR(lse));
  t.desc = {.max_batch = 3, .num_qo_heads = 4, .num_kv_heads = 2, .head_dim = 32, .dtype = DType::f32, .attn = {},
            .kv_split_tokens = 4};
  t.cdesc = {.max_batch = 3, .num_qo_heads = 4, .num_kv_heads = 2, .head_dim = 32, .dtype = KVS_F32,
             .attn = kCDefaultAttn, .kv_split_tokens = 4};
  t.outputs = {poisoned(DType::f32, {3, 4, 32}), poisoned(DType::f32, {3, 4})};
  t.args = [&](Tensors& o) {
    return SingleDecodeArgs{.q = q.view(), .k = k.view(), .v = v.view(), .kv_len = kv_len.view(), .out = o[0].view(),
                            .lse = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_single_decode_args{.q = to_c(q), .k = to_c(k), .v = to_c(v), .kv_len = to_c(kv_len),
                                  .out = to_c(o[0]), .lse = to_c(o[1])};
  };
  t.bad_field = "head_dim";
  t.break_field = [](kvs_single_decode_desc& d) { d.head_dim = 20; };
  expect_translation(t);
}

TEST(CApiTranslation, SinglePrefill) {
  auto rng = test::make_rng();
  const HostTensor q = random_tensor(rng, DType::f16, {5, 4, 32});
  const HostTensor k = random_tensor(rng, DType::f16, {1, 8, 32}), v = random_tensor(rng, DType::f16, {1, 8, 16});

  auto t = make_case<SinglePrefill>(KVS_C_ENTRY_POINTS(single_prefill));
  add_tensors(t, KVS_TENSOR(q), KVS_TENSOR(k), KVS_TENSOR(v), KVS_TENSOR(out), KVS_TENSOR(lse));
  t.desc = {.num_qo_heads = 4, .num_kv_heads = 1, .head_dim = 32, .head_dim_v = 16, .dtype = DType::f16,
            .layout = KvLayout::HND, .causal = true, .attn = kAttn};
  t.cdesc = {.num_qo_heads = 4, .num_kv_heads = 1, .head_dim = 32, .head_dim_v = 16, .dtype = KVS_F16,
             .layout = KVS_HND, .causal = 1, .attn = kCAttn};
  t.outputs = {poisoned(DType::f16, {5, 4, 16}), poisoned(DType::f32, {5, 4})};
  t.args = [&](Tensors& o) {
    return SinglePrefillArgs{.q = q.view(), .k = k.view(), .v = v.view(), .out = o[0].view(), .lse = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_single_prefill_args{.q = to_c(q), .k = to_c(k), .v = to_c(v), .out = to_c(o[0]), .lse = to_c(o[1])};
  };
  t.bad_field = "layout";
  t.break_field = [](kvs_single_prefill_desc& d) { d.layout = static_cast<kvs_kv_layout>(7); };
  expect_translation(t);
}

TEST(CApiTranslation, BatchRaggedPrefill) {
  auto rng = test::make_rng();
  const std::vector<std::int32_t> qo_indptr{0, 3, 7}, kv_indptr{0, 5, 9};
  const HostTensor q = random_tensor(rng, DType::bf16, {7, 4, 16});
  const HostTensor k = random_tensor(rng, DType::bf16, {9, 2, 16}), v = random_tensor(rng, DType::bf16, {9, 2, 32});
  const HostTensor qo_t = int_tensor(qo_indptr), kv_t = int_tensor(kv_indptr);

  auto t = make_case<BatchRaggedPrefill>(KVS_C_ENTRY_POINTS(batch_ragged_prefill));
  add_tensors(t, KVS_TENSOR(q), KVS_TENSOR(k), KVS_TENSOR(v), KVS_TENSOR(qo_indptr), KVS_TENSOR(kv_indptr), KVS_TENSOR(out), KVS_TENSOR(lse));
  t.desc = {.max_batch = 2, .num_qo_heads = 4, .num_kv_heads = 2, .head_dim = 16, .head_dim_v = 32,
            .dtype = DType::bf16, .causal = true, .attn = kAttn};
  t.cdesc = {.max_batch = 2, .num_qo_heads = 4, .num_kv_heads = 2, .head_dim = 16, .head_dim_v = 32,
             .dtype = KVS_BF16, .causal = 1, .attn = kCAttn};
  t.outputs = {poisoned(DType::bf16, {7, 4, 32}), poisoned(DType::f32, {7, 4})};
  t.args = [&](Tensors& o) {
    return BatchRaggedPrefillArgs{.q = q.view(), .k = k.view(), .v = v.view(), .qo_indptr = qo_t.view(),
                                  .kv_indptr = kv_t.view(), .out = o[0].view(), .lse = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_batch_ragged_prefill_args{.q = to_c(q), .k = to_c(k), .v = to_c(v), .qo_indptr = to_c(qo_t),
                                         .kv_indptr = to_c(kv_t), .out = to_c(o[0]), .lse = to_c(o[1])};
  };
  t.bad_field = "max_batch";
  t.break_field = [](kvs_batch_ragged_prefill_desc& d) { d.max_batch = 0; };
  t.prepare = [&](BatchRaggedPrefillPlan& p, Workspace ws) {
    return p.prepare(RaggedLengths{qo_indptr, kv_indptr}, ws, {});
  };
  t.cprepare = [&](kvs_batch_ragged_prefill_plan* p, void* ws, std::size_t bytes, kvs_error* err) {
    return kvs_batch_ragged_prefill_prepare(p, qo_indptr.data(), kv_indptr.data(), 2, ws, bytes, nullptr, err);
  };
  expect_translation(t);

  const auto plan = make_c_plan(t.c, t.cdesc);
  kvs_error err{};
  expect_error(kvs_batch_ragged_prefill_prepare(plan.get(), qo_indptr.data(), nullptr, 2, nullptr, 0, nullptr, &err),
               err, KVS_INVALID_ARGUMENT, "kv_indptr");
}

TEST(CApiTranslation, BatchPagedPrefill) {
  auto rng = test::make_rng();
  const PagedKvDesc kv{.page_size = 4, .num_pages = 8, .num_kv_heads = 2, .head_dim = 32, .dtype = DType::f16,
                       .layout = KvLayout::NHD};
  std::vector<std::int32_t> free_pages = shuffled_pages(rng, 8);
  const Table table = make_table({6, 9}, kv.page_size, &free_pages);
  const std::vector<std::int32_t> qo_indptr{0, 2, 11};
  const HostTensor k = random_tensor(rng, kv.dtype, {8, 4, 2, 32}), v = random_tensor(rng, kv.dtype, {8, 4, 2, 32});
  const HostTensor q = random_tensor(rng, DType::f16, {11, 4, 32}), qo_t = int_tensor(qo_indptr);

  auto t = make_case<BatchPagedPrefill>(KVS_C_ENTRY_POINTS(batch_paged_prefill));
  add_tensors(t, KVS_TENSOR(q), KVS_TENSOR(qo_indptr), KVS_PAGED(kv), KVS_TENSOR(out), KVS_TENSOR(lse));
  t.desc = {.max_batch = 2, .num_qo_heads = 4, .kv = kv, .q_dtype = DType::f16, .causal = false, .attn = kAttn};
  t.cdesc = {.max_batch = 2, .num_qo_heads = 4, .kv = c_desc(kv), .q_dtype = KVS_F16, .causal = 0, .attn = kCAttn};
  t.outputs = {poisoned(DType::f16, {11, 4, 32}), poisoned(DType::f32, {11, 4})};
  t.args = [&](Tensors& o) {
    return BatchPagedPrefillArgs{.q = q.view(), .qo_indptr = qo_t.view(), .kv = paged(k, v, table),
                                 .out = o[0].view(), .lse = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_batch_paged_prefill_args{.q = to_c(q), .qo_indptr = to_c(qo_t), .kv = c_paged(k, v, table),
                                        .out = to_c(o[0]), .lse = to_c(o[1])};
  };
  t.bad_field = "kv.layout";
  t.break_field = [](kvs_batch_paged_prefill_desc& d) { d.kv.layout = static_cast<kvs_kv_layout>(9); };
  t.prepare = [&](BatchPagedPrefillPlan& p, Workspace ws) {
    return p.prepare(PagedPrefillLengths{qo_indptr, table.lengths()}, ws, {});
  };
  t.cprepare = [&](kvs_batch_paged_prefill_plan* p, void* ws, std::size_t bytes, kvs_error* err) {
    return kvs_batch_paged_prefill_prepare(p, qo_indptr.data(), table.indptr.data(), table.last_page_len.data(), 2, ws,
                                           bytes, nullptr, err);
  };
  expect_translation(t);

  const auto plan = make_c_plan(t.c, t.cdesc);
  kvs_error err{};
  expect_error(kvs_batch_paged_prefill_prepare(plan.get(), qo_indptr.data(), table.indptr.data(), nullptr, 2, nullptr,
                                               0, nullptr, &err),
               err, KVS_INVALID_ARGUMENT, "kv_last_page_len");
}

TEST(CApiTranslation, CascadeAttention) {
  auto rng = test::make_rng();
  const PagedKvDesc kv{.page_size = 4, .num_pages = 12, .num_kv_heads = 1, .head_dim = 16, .dtype = DType::bf16};
  std::vector<std::int32_t> free_pages = shuffled_pages(rng, 12);
  const Table prefix = make_table({8, 4}, kv.page_size, &free_pages);
  const Table suffix = make_table({3, 0, 6}, kv.page_size, &free_pages);
  const std::vector<std::int32_t> group_indptr{0, 2, 3};
  const HostTensor k = random_tensor(rng, kv.dtype, {12, 4, 1, 16}), v = random_tensor(rng, kv.dtype, {12, 4, 1, 16});
  const HostTensor q = random_tensor(rng, DType::bf16, {3, 2, 16}), groups_t = int_tensor(group_indptr);

  auto t = make_case<CascadeAttention>(KVS_C_ENTRY_POINTS(cascade_attention));
  add_tensors(t, KVS_TENSOR(q), KVS_TENSOR(group_indptr), KVS_PAGED(prefix), KVS_PAGED(suffix), KVS_TENSOR(out), KVS_TENSOR(lse));
  t.desc = {.max_batch = 3, .max_groups = 2, .num_qo_heads = 2, .kv = kv, .q_dtype = DType::bf16, .attn = kAttn};
  t.cdesc = {.max_batch = 3, .max_groups = 2, .num_qo_heads = 2, .kv = c_desc(kv), .q_dtype = KVS_BF16,
             .attn = kCAttn};
  t.outputs = {poisoned(DType::bf16, {3, 2, 16}), poisoned(DType::f32, {3, 2})};
  t.args = [&](Tensors& o) {
    return CascadeAttentionArgs{.q = q.view(), .group_indptr = groups_t.view(), .prefix = paged(k, v, prefix),
                                .suffix = paged(k, v, suffix), .out = o[0].view(), .lse = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_cascade_attention_args{.q = to_c(q), .group_indptr = to_c(groups_t), .prefix = c_paged(k, v, prefix),
                                      .suffix = c_paged(k, v, suffix), .out = to_c(o[0]), .lse = to_c(o[1])};
  };
  t.bad_field = "max_groups";
  t.break_field = [](kvs_cascade_attention_desc& d) { d.max_groups = 0; };
  t.prepare = [&](CascadeAttentionPlan& p, Workspace ws) {
    return p.prepare(CascadeLengths{group_indptr, prefix.lengths(), suffix.lengths()}, ws, {});
  };
  t.cprepare = [&](kvs_cascade_attention_plan* p, void* ws, std::size_t bytes, kvs_error* err) {
    return kvs_cascade_attention_prepare(p, group_indptr.data(), 2, prefix.indptr.data(), prefix.last_page_len.data(),
                                         suffix.indptr.data(), suffix.last_page_len.data(), 3, ws, bytes, nullptr,
                                         err);
  };
  expect_translation(t);

  const auto plan = make_c_plan(t.c, t.cdesc);
  kvs_error err{};
  expect_error(kvs_cascade_attention_prepare(plan.get(), group_indptr.data(), 2, prefix.indptr.data(), nullptr,
                                             suffix.indptr.data(), suffix.last_page_len.data(), 3, nullptr, 0, nullptr,
                                             &err),
               err, KVS_INVALID_ARGUMENT, "prefix_last_page_len");
  expect_error(kvs_cascade_attention_prepare(plan.get(), group_indptr.data(), -2, prefix.indptr.data(),
                                             prefix.last_page_len.data(), suffix.indptr.data(),
                                             suffix.last_page_len.data(), 3, nullptr, 0, nullptr, &err),
               err, KVS_INVALID_ARGUMENT, "num_groups");
}

// --------------------------------------------------------------- merge ----

TEST(CApiTranslation, MergeState) {
  auto rng = test::make_rng();
  const HostTensor v_a = random_tensor(rng, DType::f16, {5, 2, 32}), v_b = random_tensor(rng, DType::f16, {5, 2, 32});
  const HostTensor lse_a = random_tensor(rng, DType::f32, {5, 2}, -3, 3);
  HostTensor lse_b = random_tensor(rng, DType::f32, {5, 2}, -3, 3);
  store_from_float(DType::f32, lse_b.bytes.data(), 3, -std::numeric_limits<float>::infinity());

  auto t = make_case<MergeState>(KVS_C_ENTRY_POINTS(merge_state));
  add_tensors(t, KVS_TENSOR(v_a), KVS_TENSOR(lse_a), KVS_TENSOR(v_b), KVS_TENSOR(lse_b), KVS_TENSOR(v_out), KVS_TENSOR(lse_out));
  t.desc = {.num_heads = 2, .head_dim = 32, .dtype = DType::f16};
  t.cdesc = {.num_heads = 2, .head_dim = 32, .dtype = KVS_F16};
  t.outputs = {poisoned(DType::f16, {5, 2, 32}), poisoned(DType::f32, {5, 2})};
  t.args = [&](Tensors& o) {
    return MergeStateArgs{.v_a = v_a.view(), .lse_a = lse_a.view(), .v_b = v_b.view(), .lse_b = lse_b.view(),
                          .v_out = o[0].view(), .lse_out = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_merge_state_args{.v_a = to_c(v_a), .lse_a = to_c(lse_a), .v_b = to_c(v_b), .lse_b = to_c(lse_b),
                                .v_out = to_c(o[0]), .lse_out = to_c(o[1])};
  };
  t.bad_field = "dtype";
  t.break_field = [](kvs_merge_state_desc& d) { d.dtype = KVS_INT32; };
  expect_translation(t);
}

TEST(CApiTranslation, MergeStates) {
  auto rng = test::make_rng();
  const HostTensor v = random_tensor(rng, DType::f32, {3, 4, 2, 16});
  const HostTensor lse = random_tensor(rng, DType::f32, {3, 4, 2}, -3, 3);

  auto t = make_case<MergeStates>(KVS_C_ENTRY_POINTS(merge_states));
  add_tensors(t, KVS_TENSOR(v), KVS_TENSOR(lse), KVS_TENSOR(v_out), KVS_TENSOR(lse_out));
  t.desc = {.num_heads = 2, .head_dim = 16, .dtype = DType::f32};
  t.cdesc = {.num_heads = 2, .head_dim = 16, .dtype = KVS_F32};
  t.outputs = {poisoned(DType::f32, {3, 2, 16}), poisoned(DType::f32, {3, 2})};
  t.args = [&](Tensors& o) {
    return MergeStatesArgs{.v = v.view(), .lse = lse.view(), .v_out = o[0].view(), .lse_out = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_merge_states_args{.v = to_c(v), .lse = to_c(lse), .v_out = to_c(o[0]), .lse_out = to_c(o[1])};
  };
  t.bad_field = "head_dim";
  t.break_field = [](kvs_merge_states_desc& d) { d.head_dim = 0; };
  expect_translation(t);
}

// ------------------------------------------------------------ KV cache ----

TEST(CApiTranslation, PagedKvAppend) {
  auto rng = test::make_rng();
  const PagedKvDesc kv{.page_size = 4, .num_pages = 6, .num_kv_heads = 2, .head_dim = 32,
                       .dtype = DType::fp8_e5m2, .layout = KvLayout::NHD, .k_scale = {0.5f, 2.f},
                       .v_scale = {0.25f, 4.f}};
  std::vector<std::int32_t> free_pages = shuffled_pages(rng, 6);
  const Table table = make_table({5, 7}, kv.page_size, &free_pages);
  const HostTensor k = random_tensor(rng, DType::f32, {4, 2, 32}), v = random_tensor(rng, DType::f32, {4, 2, 32});
  const HostTensor batch_indices = int_tensor({1, 0, 1, 0}), positions = int_tensor({5, 3, 6, 4});

  auto t = make_case<PagedKvAppend>(KVS_C_ENTRY_POINTS(paged_kv_append));
  add_tensors(t, KVS_TENSOR(k), KVS_TENSOR(v), KVS_TENSOR(batch_indices), KVS_TENSOR(positions), KVS_PAGED(kv));
  t.desc = {.kv = kv, .dtype = DType::f32, .mode = AppendMode::ragged};
  t.cdesc = {.kv = c_desc(kv), .dtype = KVS_F32, .mode = KVS_APPEND_RAGGED};
  t.outputs = {random_tensor(rng, kv.dtype, {6, 4, 2, 32}), random_tensor(rng, kv.dtype, {6, 4, 2, 32})};
  t.args = [&](Tensors& o) {
    return PagedKvAppendArgs{.k = k.view(), .v = v.view(), .batch_indices = batch_indices.view(),
                             .positions = positions.view(), .kv = paged(o[0], o[1], table)};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_paged_kv_append_args{.k = to_c(k), .v = to_c(v), .batch_indices = to_c(batch_indices),
                                    .positions = to_c(positions), .kv = c_paged(o[0], o[1], table)};
  };
  // 300 does not fit the C++ enum's byte: it must not wrap onto a valid mode.
  t.bad_field = "mode";
  t.break_field = [](kvs_paged_kv_append_desc& d) { d.mode = static_cast<kvs_append_mode>(300); };
  expect_translation(t);
}

TEST(CApiTranslation, PagedMlaAppend) {
  auto rng = test::make_rng();
  std::vector<std::int32_t> free_pages = shuffled_pages(rng, 6);
  const Table table = make_table({6, 3}, 4, &free_pages);
  const HostTensor ckv = random_tensor(rng, DType::bf16, {3, 64}), kpe = random_tensor(rng, DType::bf16, {3, 16});
  const HostTensor batch_indices = int_tensor({0, 1, 0}), positions = int_tensor({5, 2, 4});

  auto t = make_case<PagedMlaAppend>(KVS_C_ENTRY_POINTS(paged_mla_append));
  add_tensors(t, KVS_TENSOR(ckv), KVS_TENSOR(kpe), KVS_TENSOR(batch_indices), KVS_TENSOR(positions), KVS_TENSOR(cache.ckv_pages), KVS_TENSOR(cache.kpe_pages), KVS_TENSOR(cache.indptr), KVS_TENSOR(cache.indices), KVS_TENSOR(cache.last_page_len));
  t.desc = {.page_size = 4, .num_pages = 6, .ckv_dim = 64, .kpe_dim = 16, .dtype = DType::bf16};
  t.cdesc = {.page_size = 4, .num_pages = 6, .ckv_dim = 64, .kpe_dim = 16, .dtype = KVS_BF16};
  t.outputs = {random_tensor(rng, DType::bf16, {6, 4, 64}), random_tensor(rng, DType::bf16, {6, 4, 16})};
  t.args = [&](Tensors& o) {
    return PagedMlaAppendArgs{.ckv = ckv.view(), .kpe = kpe.view(), .batch_indices = batch_indices.view(),
                              .positions = positions.view(),
                              .cache = {.ckv_pages = o[0].view(), .kpe_pages = o[1].view(),
                                        .indptr = table.indptr_t.view(), .indices = table.indices_t.view(),
                                        .last_page_len = table.last_t.view()}};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_paged_mla_append_args{.ckv = to_c(ckv), .kpe = to_c(kpe), .batch_indices = to_c(batch_indices),
                                     .positions = to_c(positions),
                                     .cache = {.ckv_pages = to_c(o[0]), .kpe_pages = to_c(o[1]),
                                               .indptr = to_c(table.indptr_t), .indices = to_c(table.indices_t),
                                               .last_page_len = to_c(table.last_t)}};
  };
  t.bad_field = "ckv_dim";
  t.break_field = [](kvs_paged_mla_desc& d) { d.ckv_dim = 0; };
  expect_translation(t);
}

TEST(CApiTranslation, BatchPagedMlaDecode) {
  auto rng = test::make_rng();
  std::vector<std::int32_t> free_pages = shuffled_pages(rng, 6);
  const Table table = make_table({6, 0, 9}, 4, &free_pages);
  const HostTensor q_nope = random_tensor(rng, DType::bf16, {3, 4, 64}), q_pe = random_tensor(rng, DType::bf16, {3, 4, 16});
  const HostTensor ckv_pages = random_tensor(rng, DType::bf16, {6, 4, 64}),
                   kpe_pages = random_tensor(rng, DType::bf16, {6, 4, 16});

  auto t = make_case<BatchPagedMlaDecode>(KVS_C_ENTRY_POINTS(batch_paged_mla_decode));
  add_tensors(t, KVS_TENSOR(q_nope), KVS_TENSOR(q_pe), KVS_TENSOR(cache.ckv_pages), KVS_TENSOR(cache.kpe_pages), KVS_TENSOR(cache.indptr), KVS_TENSOR(cache.indices), KVS_TENSOR(cache.last_page_len), KVS_TENSOR(out), KVS_TENSOR(lse));
  const PagedMlaDesc cache{.page_size = 4, .num_pages = 6, .ckv_dim = 64, .kpe_dim = 16, .dtype = DType::bf16};
  t.desc = {.max_batch = 3, .num_heads = 4, .cache = cache, .sm_scale = 0.125f, .kv_split_tokens = 4};
  t.cdesc = {.max_batch = 3, .num_heads = 4,
             .cache = {.page_size = 4, .num_pages = 6, .ckv_dim = 64, .kpe_dim = 16, .dtype = KVS_BF16},
             .sm_scale = 0.125f, .kv_split_tokens = 4};
  t.outputs = {poisoned(DType::bf16, {3, 4, 64}), poisoned(DType::f32, {3, 4})};
  t.args = [&](Tensors& o) {
    return BatchPagedMlaDecodeArgs{.q_nope = q_nope.view(), .q_pe = q_pe.view(),
                                   .cache = {.ckv_pages = ckv_pages.view(), .kpe_pages = kpe_pages.view(),
                                             .indptr = table.indptr_t.view(), .indices = table.indices_t.view(),
                                             .last_page_len = table.last_t.view()},
                                   .out = o[0].view(), .lse = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_batch_paged_mla_decode_args{.q_nope = to_c(q_nope), .q_pe = to_c(q_pe),
                                           .cache = {.ckv_pages = to_c(ckv_pages), .kpe_pages = to_c(kpe_pages),
                                                     .indptr = to_c(table.indptr_t), .indices = to_c(table.indices_t),
                                                     .last_page_len = to_c(table.last_t)},
                                           .out = to_c(o[0]), .lse = to_c(o[1])};
  };
  t.bad_field = "sm_scale";
  t.break_field = [](kvs_batch_paged_mla_decode_desc& d) { d.sm_scale = 0.f; };
  t.prepare = [&](BatchPagedMlaDecodePlan& p, Workspace ws) { return p.prepare(table.lengths(), ws, {}); };
  t.cprepare = [&](kvs_batch_paged_mla_decode_plan* p, void* ws, std::size_t bytes, kvs_error* err) {
    return kvs_batch_paged_mla_decode_prepare(p, table.indptr.data(), table.last_page_len.data(), 3, ws, bytes,
                                              nullptr, err);
  };
  expect_translation(t);
}

TEST(CApiTranslation, KvCacheAppend) {
  auto rng = test::make_rng();
  const HostTensor k = random_tensor(rng, DType::bf16, {2, 2, 16}), v = random_tensor(rng, DType::bf16, {2, 2, 16});
  const HostTensor batch_indices = int_tensor({2, 0}), positions = int_tensor({5, 1});

  auto t = make_case<KvCacheAppend>(KVS_C_ENTRY_POINTS(kv_cache_append));
  add_tensors(t, KVS_TENSOR(k), KVS_TENSOR(v), KVS_TENSOR(batch_indices), KVS_TENSOR(positions), KVS_TENSOR(k_cache), KVS_TENSOR(v_cache));
  t.desc = {.num_kv_heads = 2, .head_dim = 16, .dtype = DType::bf16};
  t.cdesc = {.num_kv_heads = 2, .head_dim = 16, .dtype = KVS_BF16};
  t.outputs = {random_tensor(rng, DType::bf16, {3, 2, 6, 16}), random_tensor(rng, DType::bf16, {3, 2, 6, 16})};
  t.args = [&](Tensors& o) {
    return KvCacheAppendArgs{.k = k.view(), .v = v.view(), .batch_indices = batch_indices.view(),
                             .positions = positions.view(), .k_cache = o[0].view(), .v_cache = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_kv_cache_append_args{.k = to_c(k), .v = to_c(v), .batch_indices = to_c(batch_indices),
                                    .positions = to_c(positions), .k_cache = to_c(o[0]), .v_cache = to_c(o[1])};
  };
  t.bad_field = "num_kv_heads";
  t.break_field = [](kvs_kv_cache_append_desc& d) { d.num_kv_heads = 0; };
  expect_translation(t);
}

// ------------------------------------------------------------ sampling ----

TEST(CApiTranslation, SamplingScalarParamsHostSeed) {
  auto rng = test::make_rng();
  const HostTensor probs = random_tensor(rng, DType::f32, {4, 50}, 0, 1);

  auto t = make_case<Sampling>(KVS_C_ENTRY_POINTS(sampling));
  add_tensors(t, KVS_TENSOR(input), KVS_TENSOR(out), KVS_TENSOR(temperature), KVS_TENSOR(top_k), KVS_TENSOR(top_p), KVS_TENSOR(min_p), KVS_TENSOR(seeds), KVS_TENSOR(offsets));
  t.desc = {.vocab = 50, .max_batch = 4, .input = SamplingInput::probs, .filter = SamplingFilter::min_p,
            .temperature = 1.f, .min_p = 0.3f};
  t.cdesc = {.vocab = 50, .max_batch = 4, .input = KVS_SAMPLING_INPUT_PROBS, .filter = KVS_FILTER_MIN_P,
             .order = KVS_ORDER_K_THEN_P, .temperature = 1.f, .top_k = 1, .top_p = 1.f, .min_p = 0.3f,
             .params = KVS_PARAMS_SCALAR, .random = KVS_RANDOM_HOST};
  t.outputs = {poisoned(DType::int32, {4})};
  const std::uint64_t seed = 0x9e3779b97f4a7c15ull, offset = 0x1234567890ull;  // both need all 64 bits
  t.args = [&](Tensors& o) {
    return SamplingArgs{.input = probs.view(), .out = o[0].view(), .seed = seed, .offset = offset};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_sampling_args{.input = to_c(probs), .out = to_c(o[0]), .temperature = {}, .top_k = {}, .top_p = {},
                             .min_p = {}, .seed = seed, .offset = offset, .seeds = {}, .offsets = {}};
  };
  t.bad_field = "filter";
  t.break_field = [](kvs_sampling_desc& d) { d.filter = static_cast<kvs_sampling_filter>(99); };
  expect_translation(t);
}

TEST(CApiTranslation, SamplingPerRowParamsAndSeeds) {
  auto rng = test::make_rng();
  const HostTensor logits = random_tensor(rng, DType::f32, {3, 40}, -4, 4);
  const HostTensor temperature = random_tensor(rng, DType::f32, {3}, 0.5, 2), top_p = random_tensor(rng, DType::f32, {3}, 0.3, 0.9);
  const HostTensor top_k = int_tensor({5, 40, 12}), seeds = random_ints(rng, {3}, 0, 1 << 30);
  const HostTensor offsets = random_ints(rng, {3}, 0, 1000);

  auto t = make_case<Sampling>(KVS_C_ENTRY_POINTS(sampling));
  add_tensors(t, KVS_TENSOR(input), KVS_TENSOR(out), KVS_TENSOR(temperature), KVS_TENSOR(top_k), KVS_TENSOR(top_p), KVS_TENSOR(min_p), KVS_TENSOR(seeds), KVS_TENSOR(offsets));
  t.desc = {.vocab = 40, .max_batch = 3, .input = SamplingInput::logits, .filter = SamplingFilter::top_k_top_p,
            .order = TopKTopPOrder::joint, .params = ParamSource::per_row, .random = RandomSource::per_row};
  t.cdesc = {.vocab = 40, .max_batch = 3, .input = KVS_SAMPLING_INPUT_LOGITS, .filter = KVS_FILTER_TOP_K_TOP_P,
             .order = KVS_ORDER_JOINT, .temperature = 1.f, .top_k = 1, .top_p = 1.f, .min_p = 0.f,
             .params = KVS_PARAMS_PER_ROW, .random = KVS_RANDOM_PER_ROW};
  t.outputs = {poisoned(DType::int32, {3})};
  t.args = [&](Tensors& o) {
    return SamplingArgs{.input = logits.view(), .out = o[0].view(), .temperature = temperature.view(),
                        .top_k = top_k.view(), .top_p = top_p.view(), .seeds = seeds.view(),
                        .offsets = offsets.view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_sampling_args{.input = to_c(logits), .out = to_c(o[0]), .temperature = to_c(temperature),
                             .top_k = to_c(top_k), .top_p = to_c(top_p), .min_p = {}, .seed = 0, .offset = 0,
                             .seeds = to_c(seeds), .offsets = to_c(offsets)};
  };
  t.bad_field = "order";
  t.break_field = [](kvs_sampling_desc& d) { d.order = static_cast<kvs_top_k_top_p_order>(-1); };
  expect_translation(t);
}

TEST(CApiTranslation, SamplingRenorm) {
  auto rng = test::make_rng();
  const HostTensor probs = random_tensor(rng, DType::f32, {3, 30}, 0, 1);
  const HostTensor logits = random_tensor(rng, DType::f32, {3, 30}, -4, 4), top_k = int_tensor({3, 30, 7});
  {
    SCOPED_TRACE("top_p_renorm_probs, scalar top_p");
    auto t = make_case<SamplingRenorm>(KVS_C_ENTRY_POINTS(sampling_renorm));
    add_tensors(t, KVS_TENSOR(input), KVS_TENSOR(out), KVS_TENSOR(top_k), KVS_TENSOR(top_p));
    t.desc = {.vocab = 30, .max_batch = 3, .kind = RenormKind::top_p_renorm_probs, .top_p = 0.6f};
    t.cdesc = {.vocab = 30, .max_batch = 3, .kind = KVS_TOP_P_RENORM_PROBS, .top_k = 1, .top_p = 0.6f,
               .params = KVS_PARAMS_SCALAR};
    t.outputs = {poisoned(DType::f32, {3, 30})};
    t.args = [&](Tensors& o) { return SamplingRenormArgs{.input = probs.view(), .out = o[0].view()}; };
    t.cargs = [&](Tensors& o) {
      return kvs_sampling_renorm_args{.input = to_c(probs), .out = to_c(o[0]), .top_k = {}, .top_p = {}};
    };
    t.bad_field = "kind";
    t.break_field = [](kvs_sampling_renorm_desc& d) { d.kind = static_cast<kvs_renorm_kind>(3); };
    expect_translation(t);
  }
  {
    SCOPED_TRACE("top_k_mask_logits, per-row top_k");
    auto t = make_case<SamplingRenorm>(KVS_C_ENTRY_POINTS(sampling_renorm));
    add_tensors(t, KVS_TENSOR(input), KVS_TENSOR(out), KVS_TENSOR(top_k), KVS_TENSOR(top_p));
    t.desc = {.vocab = 30, .max_batch = 3, .kind = RenormKind::top_k_mask_logits, .params = ParamSource::per_row};
    t.cdesc = {.vocab = 30, .max_batch = 3, .kind = KVS_TOP_K_MASK_LOGITS, .top_k = 1, .top_p = 1.f,
               .params = KVS_PARAMS_PER_ROW};
    t.outputs = {poisoned(DType::f32, {3, 30})};
    t.args = [&](Tensors& o) {
      return SamplingRenormArgs{.input = logits.view(), .out = o[0].view(), .top_k = top_k.view()};
    };
    t.cargs = [&](Tensors& o) {
      return kvs_sampling_renorm_args{.input = to_c(logits), .out = to_c(o[0]), .top_k = to_c(top_k), .top_p = {}};
    };
    t.bad_field = "params";
    t.break_field = [](kvs_sampling_renorm_desc& d) { d.params = static_cast<kvs_param_source>(2); };
    expect_translation(t);
  }
}

TEST(CApiTranslation, ChainSpeculativeSampling) {
  auto rng = test::make_rng();
  const int vocab = 20, batch = 3, n = 3;
  const HostTensor draft_ids = random_ints(rng, {batch, n}, 0, vocab - 1);
  const HostTensor draft_probs = random_tensor(rng, DType::f32, {batch, n, vocab}, 0, 0.1);
  const HostTensor target_probs = random_tensor(rng, DType::f32, {batch, n + 1, vocab}, 0, 0.1);
  const HostTensor seeds = random_ints(rng, {batch}, 0, 1 << 30), offsets = random_ints(rng, {batch}, 0, 1000);
  for (const bool per_row : {false, true}) {
    SCOPED_TRACE(per_row ? "per-row seeds" : "host seed");
    auto t = make_case<ChainSpeculativeSampling>(KVS_C_ENTRY_POINTS(chain_speculative_sampling));
    add_tensors(t, KVS_TENSOR(draft_token_ids), KVS_TENSOR(draft_probs), KVS_TENSOR(target_probs), KVS_TENSOR(out), KVS_TENSOR(accepted), KVS_TENSOR(emitted), KVS_TENSOR(seeds), KVS_TENSOR(offsets));
    t.desc = {.vocab = vocab, .max_batch = batch, .num_draft_tokens = n,
              .random = per_row ? RandomSource::per_row : RandomSource::host};
    t.cdesc = {.vocab = vocab, .max_batch = batch, .num_draft_tokens = n,
               .random = per_row ? KVS_RANDOM_PER_ROW : KVS_RANDOM_HOST};
    t.outputs = {poisoned(DType::int32, {batch, n + 1}), poisoned(DType::int32, {batch}),
                 poisoned(DType::int32, {batch})};
    const std::uint64_t seed = per_row ? 0 : 0xfedcba9876543210ull, offset = per_row ? 0 : 0x100000007ull;
    const TensorView seeds_view = per_row ? seeds.view() : TensorView{};
    const TensorView offsets_view = per_row ? offsets.view() : TensorView{};
    t.args = [&](Tensors& o) {
      return ChainSpeculativeSamplingArgs{.draft_token_ids = draft_ids.view(), .draft_probs = draft_probs.view(),
                                          .target_probs = target_probs.view(), .out = o[0].view(),
                                          .accepted = o[1].view(), .emitted = o[2].view(), .seed = seed,
                                          .offset = offset, .seeds = seeds_view, .offsets = offsets_view};
    };
    t.cargs = [&](Tensors& o) {
      return kvs_chain_speculative_sampling_args{
          .draft_token_ids = to_c(draft_ids), .draft_probs = to_c(draft_probs), .target_probs = to_c(target_probs),
          .out = to_c(o[0]), .accepted = to_c(o[1]), .emitted = to_c(o[2]), .seed = seed, .offset = offset,
          .seeds = to_c(seeds_view), .offsets = to_c(offsets_view)};
    };
    t.bad_field = "num_draft_tokens";
    t.break_field = [](kvs_chain_speculative_sampling_desc& d) { d.num_draft_tokens = 0; };
    expect_translation(t);
  }
}

TEST(CApiTranslation, TokenPenalty) {
  auto rng = test::make_rng();
  const int vocab = 25, batch = 3;
  const HostTensor token_ids = random_ints(rng, {batch, 6}, -1, vocab - 1);
  const HostTensor counts = random_ints(rng, {batch, vocab}, 0, 2);
  const HostTensor repetition = random_tensor(rng, DType::f32, {batch}, 1, 2);
  const HostTensor frequency = random_tensor(rng, DType::f32, {batch}, 0, 1);
  const HostTensor presence = random_tensor(rng, DType::f32, {batch}, 0, 1);
  for (const bool per_row : {false, true}) {
    SCOPED_TRACE(per_row ? "counts, per-row penalties" : "token ids, scalar penalties");
    auto t = make_case<TokenPenalty>(KVS_C_ENTRY_POINTS(token_penalty));
    add_tensors(t, KVS_TENSOR(logits), KVS_TENSOR(counts), KVS_TENSOR(token_ids), KVS_TENSOR(repetition), KVS_TENSOR(frequency), KVS_TENSOR(presence));
    t.desc = {.vocab = vocab, .max_batch = batch,
              .history = per_row ? PenaltyHistory::token_counts : PenaltyHistory::token_ids, .repetition = 1.3f,
              .frequency = 0.2f, .presence = 0.1f, .params = per_row ? ParamSource::per_row : ParamSource::scalar};
    t.cdesc = {.vocab = vocab, .max_batch = batch,
               .history = per_row ? KVS_HISTORY_TOKEN_COUNTS : KVS_HISTORY_TOKEN_IDS, .repetition = 1.3f,
               .frequency = 0.2f, .presence = 0.1f, .params = per_row ? KVS_PARAMS_PER_ROW : KVS_PARAMS_SCALAR};
    t.outputs = {random_tensor(rng, DType::f32, {batch, vocab}, -3, 3)};
    const auto row_param = [&](const HostTensor& p) { return per_row ? p.view() : TensorView{}; };
    t.args = [&](Tensors& o) {
      return TokenPenaltyArgs{.logits = o[0].view(), .counts = per_row ? counts.view() : TensorView{},
                              .token_ids = per_row ? TensorView{} : token_ids.view(),
                              .repetition = row_param(repetition), .frequency = row_param(frequency),
                              .presence = row_param(presence)};
    };
    t.cargs = [&](Tensors& o) {
      return kvs_token_penalty_args{.logits = to_c(o[0]), .counts = to_c(per_row ? counts.view() : TensorView{}),
                                    .token_ids = to_c(per_row ? TensorView{} : token_ids.view()),
                                    .repetition = to_c(row_param(repetition)),
                                    .frequency = to_c(row_param(frequency)), .presence = to_c(row_param(presence))};
    };
    t.bad_field = "history";
    t.break_field = [](kvs_token_penalty_desc& d) { d.history = static_cast<kvs_penalty_history>(2); };
    expect_translation(t);
  }
}

// ---------------------------------------------------------- norm, GDN ----

TEST(CApiTranslation, RmsNorm) {
  auto rng = test::make_rng();
  const HostTensor x = random_tensor(rng, DType::bf16, {4, 64}), weight = random_tensor(rng, DType::bf16, {64});

  auto t = make_case<RmsNorm>(KVS_C_ENTRY_POINTS(rms_norm));
  add_tensors(t, KVS_TENSOR(x), KVS_TENSOR(weight), KVS_TENSOR(residual), KVS_TENSOR(out));
  t.desc = {.hidden_size = 64, .dtype = DType::bf16, .eps = 1e-3f, .weight_offset = 1.f, .fused_add = true};
  t.cdesc = {.hidden_size = 64, .dtype = KVS_BF16, .eps = 1e-3f, .weight_offset = 1.f, .fused_add = 1};
  t.outputs = {random_tensor(rng, DType::bf16, {4, 64}), poisoned(DType::bf16, {4, 64})};  // residual, out
  t.args = [&](Tensors& o) {
    return RmsNormArgs{.x = x.view(), .weight = weight.view(), .residual = o[0].view(), .out = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_rms_norm_args{.x = to_c(x), .weight = to_c(weight), .residual = to_c(o[0]), .out = to_c(o[1])};
  };
  t.bad_field = "eps";
  t.break_field = [](kvs_rms_norm_desc& d) { d.eps = 0.f; };
  expect_translation(t);
}

TEST(CApiTranslation, GdnPrefill) {
  auto rng = test::make_rng();
  const int tokens = 7, heads = 4, dk = 16, dv = 32;
  const HostTensor q = random_tensor(rng, DType::f32, {tokens, 2, dk}), k = random_tensor(rng, DType::f32, {tokens, 2, dk});
  const HostTensor v = random_tensor(rng, DType::f32, {tokens, heads, dv});
  const HostTensor alpha = random_tensor(rng, DType::f32, {tokens, heads}, 0.5, 1);
  const HostTensor beta = random_tensor(rng, DType::f32, {tokens, heads}, 0, 1);
  const HostTensor cu_seqlens = int_tensor({0, 3, tokens});
  const HostTensor initial_state = random_tensor(rng, DType::f32, {2, heads, dv, dk});

  auto t = make_case<GdnPrefill>(KVS_C_ENTRY_POINTS(gdn_prefill));
  add_tensors(t, KVS_TENSOR(q), KVS_TENSOR(k), KVS_TENSOR(v), KVS_TENSOR(alpha), KVS_TENSOR(beta), KVS_TENSOR(cu_seqlens), KVS_TENSOR(initial_state), KVS_TENSOR(out), KVS_TENSOR(final_state));
  t.desc = {.max_batch = 2, .max_tokens = 16, .num_qk_heads = 2, .num_v_heads = heads, .head_dim_k = dk,
            .head_dim_v = dv, .dtype = DType::f32, .scale = 0.3f, .use_qk_l2norm = true, .l2norm_eps = 1e-4f};
  t.cdesc = {.max_batch = 2, .max_tokens = 16, .num_qk_heads = 2, .num_v_heads = heads, .head_dim_k = dk,
             .head_dim_v = dv, .dtype = KVS_F32, .scale = 0.3f, .use_qk_l2norm = 1, .l2norm_eps = 1e-4f};
  t.outputs = {poisoned(DType::f32, {tokens, heads, dv}), poisoned(DType::f32, {2, heads, dv, dk})};
  t.args = [&](Tensors& o) {
    return GdnPrefillArgs{.q = q.view(), .k = k.view(), .v = v.view(), .alpha = alpha.view(), .beta = beta.view(),
                          .cu_seqlens = cu_seqlens.view(), .initial_state = initial_state.view(), .out = o[0].view(),
                          .final_state = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_gdn_prefill_args{.q = to_c(q), .k = to_c(k), .v = to_c(v), .alpha = to_c(alpha), .beta = to_c(beta),
                                .cu_seqlens = to_c(cu_seqlens), .initial_state = to_c(initial_state),
                                .out = to_c(o[0]), .final_state = to_c(o[1])};
  };
  t.bad_field = "head_dim_v";
  t.break_field = [](kvs_gdn_prefill_desc& d) { d.head_dim_v = 8; };
  expect_translation(t);
}

TEST(CApiTranslation, GdnDecode) {
  auto rng = test::make_rng();
  const int batch = 3, slots = 5, heads = 4, dk = 16, dv = 32;
  const HostTensor q = random_tensor(rng, DType::bf16, {batch, 2, dk}), k = random_tensor(rng, DType::bf16, {batch, 2, dk});
  const HostTensor v = random_tensor(rng, DType::bf16, {batch, heads, dv});
  const HostTensor alpha = random_tensor(rng, DType::f32, {batch, heads}, 0.5, 1);
  const HostTensor beta = random_tensor(rng, DType::f32, {batch, heads}, 0, 1);
  const HostTensor state_indices = int_tensor({4, -1, 1});

  auto t = make_case<GdnDecode>(KVS_C_ENTRY_POINTS(gdn_decode));
  add_tensors(t, KVS_TENSOR(q), KVS_TENSOR(k), KVS_TENSOR(v), KVS_TENSOR(alpha), KVS_TENSOR(beta), KVS_TENSOR(state_indices), KVS_TENSOR(state), KVS_TENSOR(out));
  t.desc = {.max_batch = 4, .num_state_slots = slots, .num_qk_heads = 2, .num_v_heads = heads, .head_dim_k = dk,
            .head_dim_v = dv, .dtype = DType::bf16, .scale = 0.3f, .use_qk_l2norm = true, .l2norm_eps = 1e-4f};
  t.cdesc = {.max_batch = 4, .num_state_slots = slots, .num_qk_heads = 2, .num_v_heads = heads, .head_dim_k = dk,
             .head_dim_v = dv, .dtype = KVS_BF16, .scale = 0.3f, .use_qk_l2norm = 1, .l2norm_eps = 1e-4f};
  t.outputs = {random_tensor(rng, DType::f32, {slots, heads, dv, dk}), poisoned(DType::bf16, {batch, heads, dv})};
  t.args = [&](Tensors& o) {
    return GdnDecodeArgs{.q = q.view(), .k = k.view(), .v = v.view(), .alpha = alpha.view(), .beta = beta.view(),
                         .state_indices = state_indices.view(), .state = o[0].view(), .out = o[1].view()};
  };
  t.cargs = [&](Tensors& o) {
    return kvs_gdn_decode_args{.q = to_c(q), .k = to_c(k), .v = to_c(v), .alpha = to_c(alpha), .beta = to_c(beta),
                               .state_indices = to_c(state_indices), .state = to_c(o[0]), .out = to_c(o[1])};
  };
  t.bad_field = "num_state_slots";
  t.break_field = [](kvs_gdn_decode_desc& d) { d.num_state_slots = 0; };
  expect_translation(t);
}

}  // namespace
