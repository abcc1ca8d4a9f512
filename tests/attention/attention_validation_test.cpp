// Every attention op refuses bad descriptors, bad prepare() metadata, bad run()
// arguments and bad page tables with InvalidArgument and a message naming the
// culprit, without writing its outputs; validate_page_table reports the first
// bad entry of a page table.
#include <cmath>

#include "attention/attention_test_util.hpp"
#include "harness/harness.hpp"
#include "harness/validation.hpp"

namespace kvserve::test {
namespace {

constexpr int kHeadDim = 64, kKvHeads = 2, kGroup = 2, kQoHeads = kKvHeads * kGroup, kPageSize = 4;

PagedKvDesc small_kv() {
  return {.page_size = kPageSize, .num_kv_heads = kKvHeads, .head_dim = kHeadDim, .dtype = DType::bf16};
}

Buffer activations(std::mt19937_64& rng, std::int64_t rows, int heads, int dim, Device device) {
  Buffer b(DType::bf16, rows * heads * dim, device);
  b.fill_uniform(rng, -1, 1);
  return b;
}

template <class Op>
std::vector<DescFault<Op>> attn_faults() {
  return {{"attn.sm_scale", [](auto& d) { d.attn.sm_scale = -1.f; }},
          {"attn.sm_scale", [](auto& d) { d.attn.sm_scale = NAN; }},
          {"attn.logits_soft_cap", [](auto& d) { d.attn.logits_soft_cap = -1.f; }},
          {"attn.logits_soft_cap", [](auto& d) { d.attn.logits_soft_cap = INFINITY; }},
          {"attn.window_left", [](auto& d) { d.attn.window_left = -2; }}};
}

template <class Op>
std::vector<DescFault<Op>> with_attn_faults(std::vector<DescFault<Op>> faults) {
  for (auto& f : attn_faults<Op>()) faults.push_back(std::move(f));
  return faults;
}

// Ops over a paged cache (fields kv, q_dtype, num_qo_heads, max_batch).
template <class Op>
std::vector<DescFault<Op>> paged_desc_faults() {
  return with_attn_faults<Op>({
      {"max_batch", [](auto& d) { d.max_batch = 0; }},
      {"num_qo_heads", [](auto& d) { d.num_qo_heads = 0; }},
      {"num_qo_heads", [](auto& d) { d.num_qo_heads = kKvHeads * 2 + 1; }},  // group ratio not integral
      {"kv.page_size", [](auto& d) { d.kv.page_size = 0; }},
      {"kv.num_pages", [](auto& d) { d.kv.num_pages = -3; }},
      {"kv.num_kv_heads", [](auto& d) { d.kv.num_kv_heads = 0; }},
      {"kv.head_dim", [](auto& d) { d.kv.head_dim = 72; }},
      {"kv.head_dim", [](auto& d) { d.kv.head_dim = 272; }},
      {"kv.dtype", [](auto& d) { d.kv.dtype = DType::int32; }},
      {"kv.layout", [](auto& d) { d.kv.layout = static_cast<KvLayout>(7); }},
      {"kv.k_scale", [](auto& d) { d.kv.k_scale = {2.f}; }},  // scales for a bf16 cache
      {"kv.v_scale", [](auto& d) {
         d.kv.dtype = DType::fp8_e4m3;
         d.kv.v_scale = {1.f, 1.f, 1.f};  // neither 1 nor num_kv_heads
       }},
      {"kv.k_scale[0]", [](auto& d) {
         d.kv.dtype = DType::fp8_e5m2;
         d.kv.k_scale = {-1.f};
       }},
      {"q_dtype", [](auto& d) { d.q_dtype = DType::f16; }},  // the cache is bf16
      {"q_dtype", [](auto& d) {
         d.kv.dtype = DType::fp8_e4m3;
         d.q_dtype = DType::f32;
       }},
  });
}

// Ops over contiguous K/V (fields num_qo_heads, num_kv_heads, head_dim, dtype).
template <class Op>
std::vector<DescFault<Op>> contiguous_desc_faults(std::vector<DescFault<Op>> extra) {
  std::vector<DescFault<Op>> faults = with_attn_faults<Op>({
      {"num_qo_heads", [](auto& d) { d.num_qo_heads = 0; }},
      {"num_kv_heads", [](auto& d) { d.num_kv_heads = -1; }},
      {"num_qo_heads", [](auto& d) { d.num_qo_heads = kKvHeads * 2 + 1; }},  // group ratio not integral
      {"head_dim", [](auto& d) { d.head_dim = 72; }},
      {"head_dim", [](auto& d) { d.head_dim = 0; }},
      {"dtype", [](auto& d) { d.dtype = DType::fp8_e4m3; }},
      {"dtype", [](auto& d) { d.dtype = DType::int32; }},
  });
  for (auto& f : extra) faults.push_back(std::move(f));
  return faults;
}

template <class Op>
using Get = std::function<TensorView&(typename Op::Args&)>;

template <class Op>
std::vector<TensorArg<Op>> paged_args(const std::string& name, std::function<PagedKv&(typename Op::Args&)> kv) {
  return {{name + ".k_pages", [kv](auto& a) -> TensorView& { return kv(a).k_pages; }},
          {name + ".v_pages", [kv](auto& a) -> TensorView& { return kv(a).v_pages; }},
          {name + ".indptr", [kv](auto& a) -> TensorView& { return kv(a).indptr; }},
          {name + ".indices", [kv](auto& a) -> TensorView& { return kv(a).indices; }, false, /*fixed_extent=*/false},
          {name + ".last_page_len", [kv](auto& a) -> TensorView& { return kv(a).last_page_len; }}};
}

template <class Op>
std::vector<TensorArg<Op>> concat(std::vector<TensorArg<Op>> a, const std::vector<TensorArg<Op>>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A bad entry in one of a page table's arrays, and what the message must say
// about where it is.
struct TableFault {
  std::string label, array, detail;  // array: "indptr", "indices" or "last_page_len"
  std::vector<std::int32_t> values;
};

TensorView& array_of(PagedKv& kv, const std::string& array) {
  if (array == "indptr") return kv.indptr;
  return array == "indices" ? kv.indices : kv.last_page_len;
}

// Needs at least two requests, one of them with two or more pages.
std::vector<TableFault> table_faults(const std::vector<std::int32_t>& indptr, const std::vector<std::int32_t>& indices,
                                     const std::vector<std::int32_t>& last, std::int64_t num_pages) {
  std::size_t r = 0;
  while (indptr[r + 1] - indptr[r] < 2) ++r;
  const auto with = [](std::vector<std::int32_t> v, std::size_t i, std::int64_t x) {
    v[i] = static_cast<std::int32_t>(x);
    return v;
  };
  const std::string request = "request " + std::to_string(r);
  return {{"page id = num_pages", "indices", request + ", position 1", with(indices, indptr[r] + 1, num_pages)},
          {"negative page id", "indices", request + ", position 0", with(indices, indptr[r], -1)},
          {"last_page_len 0", "last_page_len", request, with(last, r, 0)},
          {"last_page_len > page_size", "last_page_len", request, with(last, r, kPageSize + 1)},
          {"indptr decreasing", "indptr", "entry 2", with(indptr, 1, indptr[2] + 1)},
          {"indptr not starting at 0", "indptr", "entry 0", with(indptr, 0, 1)}};
}

// The table faults of one PagedKv argument, as run() faults (host tables only).
template <class Op>
void add_table_faults(std::vector<ArgFault<Op>>* faults, const std::string& name,
                      std::function<PagedKv&(typename Op::Args&)> kv, const std::vector<std::int32_t>& indptr,
                      const std::vector<std::int32_t>& indices, const std::vector<std::int32_t>& last,
                      std::int64_t num_pages, Device device) {
  if (!device.is_cpu()) return;  // a device table is validate_page_table's job
  for (const TableFault& f : table_faults(indptr, indices, last, num_pages)) {
    const std::string array = f.array;
    faults->push_back(int_values_fault<Op>(name + ": " + f.label, name + "." + array, f.detail,
                                           [kv, array](auto& a) -> TensorView& { return array_of(kv(a), array); },
                                           f.values, device));
  }
}

template <class T>
std::span<const T> first(const std::vector<T>& v, std::size_t n) {
  return std::span<const T>(v).first(n);
}

class AttentionValidationTest : public DeviceTest {};

// ------------------------------------------------------- BatchPagedDecode --

TEST_P(AttentionValidationTest, BatchPagedDecode) {
  using Op = BatchPagedDecode;
  const Device device = GetParam();
  auto rng = make_rng();
  const std::int64_t b = 3;
  const PagedCache cache = make_paged_cache(rng, small_kv(), {5, 9, 3}, device);
  const BatchPagedDecodeDesc desc{.max_batch = 4, .num_qo_heads = kQoHeads, .kv = cache.desc};
  auto desc_faults = paged_desc_faults<Op>();
  desc_faults.push_back({"kv_split_tokens", [](auto& d) { d.kv_split_tokens = -1; }});
  expect_desc_faults_refused<Op>(desc, desc_faults);

  KVS_CREATE_OR_SKIP(plan, BatchPagedDecodePlan, desc, device);
  DeviceMemory mem(device, plan->workspace_bytes());
  const Workspace ws = workspace_of(mem);
  Buffer q = activations(rng, b, kQoHeads, kHeadDim, device), out(DType::bf16, q.size(), device),
         lse(DType::f32, b * kQoHeads, device);
  const BatchPagedDecodeArgs good{.q = q.view({b, kQoHeads, kHeadDim}), .kv = cache.view(),
                                  .out = out.view({b, kQoHeads, kHeadDim}), .lse = lse.view({b, kQoHeads})};
  expect_prepare_protocol(*plan, {first(cache.indptr, b), first(cache.last_page_len, b - 1)}, good, "q", ws,
                          {out, lse});

  const std::vector<std::int32_t> decreasing{0, 2, 1, 3}, zero_last{1, 0, 1}, too_many{0, 1, 2, 3, 4, 5};
  expect_prepare_refused(*plan, {decreasing, cache.last_page_len}, "host.indptr", ws);
  expect_prepare_refused(*plan, {cache.indptr, zero_last}, "host.last_page_len[1]", ws);
  expect_prepare_refused(*plan, {cache.indptr, first(cache.last_page_len, 2)}, "host.last_page_len", ws);
  expect_prepare_refused(*plan, {too_many, std::vector<std::int32_t>(5, 1)}, "host.indptr", ws);

  ASSERT_TRUE(plan->prepare(cache.lengths(), ws, {}));
  const std::function<PagedKv&(BatchPagedDecodeArgs&)> kv = [](auto& a) -> PagedKv& { return a.kv; };
  auto faults = tensor_faults<Op>(concat<Op>({{"q", [](auto& a) -> TensorView& { return a.q; }},
                                              {"out", [](auto& a) -> TensorView& { return a.out; }},
                                              {"lse", [](auto& a) -> TensorView& { return a.lse; }, true}},
                                             paged_args<Op>("kv", kv)),
                                  device);
  add_table_faults<Op>(&faults, "kv", kv, cache.indptr, cache.indices, cache.last_page_len, cache.desc.num_pages,
                       device);
  expect_arg_faults_refused(*plan, good, faults, {out, lse}, ws);
}

// ----------------------------------------------------------- SingleDecode --

TEST_P(AttentionValidationTest, SingleDecode) {
  using Op = SingleDecode;
  const Device device = GetParam();
  auto rng = make_rng();
  const std::int64_t b = 3, max_len = 10;
  const SingleDecodeDesc desc{.max_batch = 3, .num_qo_heads = kQoHeads, .num_kv_heads = kKvHeads,
                              .head_dim = kHeadDim, .dtype = DType::bf16};
  expect_desc_faults_refused<Op>(
      desc, contiguous_desc_faults<Op>({{"max_batch", [](auto& d) { d.max_batch = 0; }},
                                        {"kv_split_tokens", [](auto& d) { d.kv_split_tokens = -5; }}}));

  KVS_CREATE_OR_SKIP(plan, SingleDecodePlan, desc, device);
  DeviceMemory mem(device, plan->workspace_bytes());
  Buffer q = activations(rng, b, kQoHeads, kHeadDim, device), out(DType::bf16, q.size(), device),
         lse(DType::f32, b * kQoHeads, device);
  Buffer k = activations(rng, b * max_len, kKvHeads, kHeadDim, device),
         v = activations(rng, b * max_len, kKvHeads, kHeadDim, device);
  Buffer kv_len = int_buffer({10, 0, 4}, device);
  const SingleDecodeArgs good{.q = q.view({b, kQoHeads, kHeadDim}), .k = k.view({b, kKvHeads, max_len, kHeadDim}),
                              .v = v.view({b, kKvHeads, max_len, kHeadDim}), .kv_len = kv_len.view({b}),
                              .out = out.view({b, kQoHeads, kHeadDim}), .lse = lse.view({b, kQoHeads})};
  const Get<Op> kv_len_arg = [](auto& a) -> TensorView& { return a.kv_len; };
  auto faults = tensor_faults<Op>({{"q", [](auto& a) -> TensorView& { return a.q; }},
                                   {"k", [](auto& a) -> TensorView& { return a.k; }},
                                   {"v", [](auto& a) -> TensorView& { return a.v; }},
                                   {"kv_len", kv_len_arg, true},
                                   {"out", [](auto& a) -> TensorView& { return a.out; }},
                                   {"lse", [](auto& a) -> TensorView& { return a.lse; }, true}},
                                  device);
  faults.push_back({"a batch above max_batch", "q", "max_batch", [](auto& a, auto&) { a.q.shape[0] = 4; }});
  if (device.is_cpu()) {
    faults.push_back(int_values_fault<Op>("kv_len > L", "kv_len", "row 1", kv_len_arg, {1, 11, 2}, device));
    faults.push_back(int_values_fault<Op>("kv_len < 0", "kv_len", "row 2", kv_len_arg, {1, 1, -1}, device));
  }
  expect_arg_faults_refused(*plan, good, faults, {out, lse}, workspace_of(mem));
}

// ---------------------------------------------------------- SinglePrefill --

TEST_P(AttentionValidationTest, SinglePrefill) {
  using Op = SinglePrefill;
  const Device device = GetParam();
  auto rng = make_rng();
  const std::int64_t q_len = 5, kv_len = 7;
  const int dv = 128;
  const SinglePrefillDesc desc{.num_qo_heads = kQoHeads, .num_kv_heads = kKvHeads, .head_dim = kHeadDim,
                               .head_dim_v = dv, .dtype = DType::bf16, .causal = true};
  expect_desc_faults_refused<Op>(
      desc, contiguous_desc_faults<Op>({{"head_dim_v", [](auto& d) { d.head_dim_v = 40; }},
                                        {"layout", [](auto& d) { d.layout = static_cast<KvLayout>(9); }}}));

  KVS_CREATE_OR_SKIP(plan, SinglePrefillPlan, desc, device);
  DeviceMemory mem(device, plan->workspace_bytes());
  Buffer q = activations(rng, q_len, kQoHeads, kHeadDim, device),
         k = activations(rng, kv_len, kKvHeads, kHeadDim, device), v = activations(rng, kv_len, kKvHeads, dv, device), out(DType::bf16, q_len * kQoHeads * dv, device),
         lse(DType::f32, q_len * kQoHeads, device);
  const SinglePrefillArgs good{.q = q.view({q_len, kQoHeads, kHeadDim}), .k = k.view({kv_len, kKvHeads, kHeadDim}),
                               .v = v.view({kv_len, kKvHeads, dv}), .out = out.view({q_len, kQoHeads, dv}),
                               .lse = lse.view({q_len, kQoHeads})};
  const auto faults = tensor_faults<Op>({{"q", [](auto& a) -> TensorView& { return a.q; }},
                                         {"k", [](auto& a) -> TensorView& { return a.k; }},
                                         {"v", [](auto& a) -> TensorView& { return a.v; }},
                                         {"out", [](auto& a) -> TensorView& { return a.out; }},
                                         {"lse", [](auto& a) -> TensorView& { return a.lse; }, true}},
                                        device);
  expect_arg_faults_refused(*plan, good, faults, {out, lse}, workspace_of(mem));
}

// ----------------------------------------------------- BatchRaggedPrefill --

TEST_P(AttentionValidationTest, BatchRaggedPrefill) {
  using Op = BatchRaggedPrefill;
  const Device device = GetParam();
  auto rng = make_rng();
  const std::vector<std::int32_t> qo_indptr{0, 3, 4, 9}, kv_indptr{0, 5, 5, 14};
  const std::int64_t b = 3, total_q = 9, total_kv = 14;
  const BatchRaggedPrefillDesc desc{.max_batch = 3, .num_qo_heads = kQoHeads, .num_kv_heads = kKvHeads,
                                    .head_dim = kHeadDim, .dtype = DType::bf16, .causal = true};
  expect_desc_faults_refused<Op>(
      desc, contiguous_desc_faults<Op>({{"max_batch", [](auto& d) { d.max_batch = -1; }},
                                        {"head_dim_v", [](auto& d) { d.head_dim_v = 300; }}}));

  KVS_CREATE_OR_SKIP(plan, BatchRaggedPrefillPlan, desc, device);
  DeviceMemory mem(device, plan->workspace_bytes());
  const Workspace ws = workspace_of(mem);
  Buffer q = activations(rng, total_q, kQoHeads, kHeadDim, device),
         k = activations(rng, total_kv, kKvHeads, kHeadDim, device),
         v = activations(rng, total_kv, kKvHeads, kHeadDim, device), out(DType::bf16, q.size(), device),
         lse(DType::f32, total_q * kQoHeads, device);
  Buffer qo_dev = int_buffer(qo_indptr, device), kv_dev = int_buffer(kv_indptr, device);
  const BatchRaggedPrefillArgs good{.q = q.view({total_q, kQoHeads, kHeadDim}),
                                    .k = k.view({total_kv, kKvHeads, kHeadDim}),
                                    .v = v.view({total_kv, kKvHeads, kHeadDim}), .qo_indptr = qo_dev.view({b + 1}),
                                    .kv_indptr = kv_dev.view({b + 1}), .out = out.view({total_q, kQoHeads, kHeadDim}),
                                    .lse = lse.view({total_q, kQoHeads})};
  expect_prepare_protocol(*plan, {first(qo_indptr, b), first(kv_indptr, b)}, good, "qo_indptr", ws, {out, lse});

  const std::vector<std::int32_t> decreasing{0, 3, 2, 9}, too_many{0, 1, 2, 3, 4};
  expect_prepare_refused(*plan, {decreasing, kv_indptr}, "host.qo_indptr", ws);
  expect_prepare_refused(*plan, {qo_indptr, first(kv_indptr, 3)}, "host.kv_indptr", ws);
  expect_prepare_refused(*plan, {too_many, too_many}, "host.qo_indptr", ws);

  ASSERT_TRUE(plan->prepare({qo_indptr, kv_indptr}, ws, {}));
  const Get<Op> qo_arg = [](auto& a) -> TensorView& { return a.qo_indptr; };
  const Get<Op> kv_arg = [](auto& a) -> TensorView& { return a.kv_indptr; };
  auto faults = tensor_faults<Op>({{"q", [](auto& a) -> TensorView& { return a.q; }},
                                   {"k", [](auto& a) -> TensorView& { return a.k; }},
                                   {"v", [](auto& a) -> TensorView& { return a.v; }},
                                   {"qo_indptr", qo_arg},
                                   {"kv_indptr", kv_arg},
                                   {"out", [](auto& a) -> TensorView& { return a.out; }},
                                   {"lse", [](auto& a) -> TensorView& { return a.lse; }, true}},
                                  device);
  if (device.is_cpu()) {
    faults.push_back(int_values_fault<Op>("qo_indptr decreasing", "qo_indptr", "entry 2", qo_arg, decreasing, device));
    faults.push_back(int_values_fault<Op>("qo_indptr past q", "qo_indptr", "rows of q", qo_arg, {0, 3, 4, 10}, device));
    faults.push_back(int_values_fault<Op>("kv_indptr past k", "kv_indptr", "rows of k", kv_arg, {0, 5, 5, 15}, device));
  }
  expect_arg_faults_refused(*plan, good, faults, {out, lse}, ws);
}

// ------------------------------------------------------ BatchPagedPrefill --

TEST_P(AttentionValidationTest, BatchPagedPrefill) {
  using Op = BatchPagedPrefill;
  const Device device = GetParam();
  auto rng = make_rng();
  const PagedCache cache = make_paged_cache(rng, small_kv(), {5, 9, 3}, device);
  const std::vector<std::int32_t> qo_indptr{0, 2, 11, 14};
  const std::int64_t b = 3, total_q = 14;
  const BatchPagedPrefillDesc desc{.max_batch = 3, .num_qo_heads = kQoHeads, .kv = cache.desc};
  expect_desc_faults_refused<Op>(desc, paged_desc_faults<Op>());

  KVS_CREATE_OR_SKIP(plan, BatchPagedPrefillPlan, desc, device);
  DeviceMemory mem(device, plan->workspace_bytes());
  const Workspace ws = workspace_of(mem);
  Buffer q = activations(rng, total_q, kQoHeads, kHeadDim, device), out(DType::bf16, q.size(), device),
         lse(DType::f32, total_q * kQoHeads, device);
  Buffer qo_dev = int_buffer(qo_indptr, device);
  const BatchPagedPrefillArgs good{.q = q.view({total_q, kQoHeads, kHeadDim}), .qo_indptr = qo_dev.view({b + 1}),
                                   .kv = cache.view(), .out = out.view({total_q, kQoHeads, kHeadDim}),
                                   .lse = lse.view({total_q, kQoHeads})};
  expect_prepare_protocol(*plan, {first(qo_indptr, b), {first(cache.indptr, b), first(cache.last_page_len, b - 1)}},
                          good, "qo_indptr", ws, {out, lse});

  const std::vector<std::int32_t> q_past_kv{0, 6, 11, 14}, zero_last{1, 0, 3};
  expect_prepare_refused(*plan, {q_past_kv, cache.lengths()}, "host.qo_indptr", ws);
  expect_prepare_refused(*plan, {first(qo_indptr, 3), cache.lengths()}, "host.qo_indptr", ws);
  expect_prepare_refused(*plan, {qo_indptr, {cache.indptr, zero_last}}, "host.kv.last_page_len[1]", ws);

  ASSERT_TRUE(plan->prepare({qo_indptr, cache.lengths()}, ws, {}));
  const Get<Op> qo_arg = [](auto& a) -> TensorView& { return a.qo_indptr; };
  const std::function<PagedKv&(BatchPagedPrefillArgs&)> kv = [](auto& a) -> PagedKv& { return a.kv; };
  auto faults = tensor_faults<Op>(concat<Op>({{"q", [](auto& a) -> TensorView& { return a.q; }},
                                              {"qo_indptr", qo_arg},
                                              {"out", [](auto& a) -> TensorView& { return a.out; }},
                                              {"lse", [](auto& a) -> TensorView& { return a.lse; }, true}},
                                             paged_args<Op>("kv", kv)),
                                  device);
  add_table_faults<Op>(&faults, "kv", kv, cache.indptr, cache.indices, cache.last_page_len, cache.desc.num_pages,
                       device);
  if (device.is_cpu())
    faults.push_back(int_values_fault<Op>("q_len > kv_len", "qo_indptr", "request 0", qo_arg, q_past_kv, device));
  expect_arg_faults_refused(*plan, good, faults, {out, lse}, ws);
}

// ------------------------------------------------------- CascadeAttention --

TEST_P(AttentionValidationTest, CascadeAttention) {
  using Op = CascadeAttention;
  const Device device = GetParam();
  auto rng = make_rng();
  // Rows 0..1 of the cache are the two groups' prefixes, rows 2..4 the suffixes.
  const PagedCache cache = make_paged_cache(rng, small_kv(), {9, 5, 3, 6, 5}, device);
  PageTable prefix, suffix;
  for (std::int64_t row = 0; row < 5; ++row)
    (row < 2 ? prefix : suffix).add_row(pages_of(cache, row), cache.last_page_len[row]);
  prefix.upload(device);
  suffix.upload(device);
  const std::vector<std::int32_t> group_indptr{0, 2, 3};
  const std::int64_t b = 3, groups = 2;
  const CascadeAttentionDesc desc{.max_batch = 3, .max_groups = 2, .num_qo_heads = kQoHeads, .kv = cache.desc};
  auto desc_faults = paged_desc_faults<Op>();
  desc_faults.push_back({"max_groups", [](auto& d) { d.max_groups = 0; }});
  expect_desc_faults_refused<Op>(desc, desc_faults);

  KVS_CREATE_OR_SKIP(plan, CascadeAttentionPlan, desc, device);
  DeviceMemory mem(device, plan->workspace_bytes());
  const Workspace ws = workspace_of(mem);
  Buffer q = activations(rng, b, kQoHeads, kHeadDim, device), out(DType::bf16, q.size(), device),
         lse(DType::f32, b * kQoHeads, device);
  Buffer group_dev = int_buffer(group_indptr, device);
  const CascadeAttentionArgs good{.q = q.view({b, kQoHeads, kHeadDim}), .group_indptr = group_dev.view({groups + 1}),
                                  .prefix = prefix.view(cache), .suffix = suffix.view(cache),
                                  .out = out.view({b, kQoHeads, kHeadDim}), .lse = lse.view({b, kQoHeads})};
  const std::vector<std::int32_t> shorter_groups{0, 2, 2};
  expect_prepare_protocol(*plan,
                          {shorter_groups, prefix.lengths(),
                           {first(suffix.indptr, b), first(suffix.last_page_len, b - 1)}},
                          good, "q", ws, {out, lse});

  const std::vector<std::int32_t> short_of_batch{0, 1, 2}, three_groups{0, 1, 2, 3}, zero_last{1, 0, 1},
      ones{1, 1, 1};
  expect_prepare_refused(*plan, {short_of_batch, prefix.lengths(), suffix.lengths()}, "host.group_indptr", ws);
  expect_prepare_refused(*plan, {three_groups, prefix.lengths(), suffix.lengths()}, "host.group_indptr", ws);
  expect_prepare_refused(*plan, {three_groups, {three_groups, ones}, suffix.lengths()}, "host.prefix.indptr",
                         ws);
  expect_prepare_refused(*plan, {group_indptr, prefix.lengths(), {suffix.indptr, zero_last}},
                         "host.suffix.last_page_len[1]", ws);

  ASSERT_TRUE(plan->prepare({group_indptr, prefix.lengths(), suffix.lengths()}, ws, {}));
  const Get<Op> group_arg = [](auto& a) -> TensorView& { return a.group_indptr; };
  const std::function<PagedKv&(CascadeAttentionArgs&)> prefix_kv = [](auto& a) -> PagedKv& { return a.prefix; };
  const std::function<PagedKv&(CascadeAttentionArgs&)> suffix_kv = [](auto& a) -> PagedKv& { return a.suffix; };
  auto faults = tensor_faults<Op>(
      concat<Op>(concat<Op>({{"q", [](auto& a) -> TensorView& { return a.q; }},
                             {"group_indptr", group_arg},
                             {"out", [](auto& a) -> TensorView& { return a.out; }},
                             {"lse", [](auto& a) -> TensorView& { return a.lse; }, true}},
                            paged_args<Op>("prefix", prefix_kv)),
                 paged_args<Op>("suffix", suffix_kv)),
      device);
  add_table_faults<Op>(&faults, "prefix", prefix_kv, prefix.indptr, prefix.indices, prefix.last_page_len,
                       cache.desc.num_pages, device);
  add_table_faults<Op>(&faults, "suffix", suffix_kv, suffix.indptr, suffix.indices, suffix.last_page_len,
                       cache.desc.num_pages, device);
  if (device.is_cpu())
    faults.push_back(
        int_values_fault<Op>("groups short of the batch", "group_indptr", "the batch", group_arg, {0, 1, 2}, device));
  expect_arg_faults_refused(*plan, good, faults, {out, lse}, ws);
}

INSTANTIATE_TEST_SUITE_P(Devices, AttentionValidationTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

// ---------------------------------------------------- validate_page_table --

TEST(ValidatePageTable, ReportsTheFirstBadEntry) {
  auto rng = make_rng();
  const PagedCache cache = make_paged_cache(rng, small_kv(), {5, 9, 3}, Device::cpu());
  PagedKv table_only = cache.view();
  table_only.k_pages = table_only.v_pages = {};  // the pools are not read
  const Status ok = validate_page_table(cache.desc, table_only);
  ASSERT_TRUE(ok) << ok.to_string();

  for (const TableFault& f : table_faults(cache.indptr, cache.indices, cache.last_page_len, cache.desc.num_pages)) {
    SCOPED_TRACE(f.label);
    const Buffer bad = int_buffer(f.values, Device::cpu());
    PagedKv kv = table_only;
    array_of(kv, f.array) = bad.view({static_cast<std::int64_t>(f.values.size())});
    const Status s = validate_page_table(cache.desc, kv);
    expect_rejected(s, "kv." + f.array);
    EXPECT_NE(s.message().find(f.detail), std::string::npos) << s.message();
  }

  const auto expect_refused = [&](const PagedKvDesc& desc, const PagedKv& kv, const std::string& name) {
    expect_rejected(validate_page_table(desc, kv), name);
  };
  PagedKvDesc bad_desc = cache.desc;
  bad_desc.page_size = 0;
  expect_refused(bad_desc, table_only, "desc.page_size");
  PagedKv kv = table_only;
  kv.indices.shape[0] = cache.indptr.back() - 1;  // fewer ids than indptr[B] says
  expect_refused(cache.desc, kv, "kv.indices");
  kv = table_only;
  kv.last_page_len.shape[0] = 2;
  expect_refused(cache.desc, kv, "kv.last_page_len");
  kv = table_only;
  kv.indptr.dtype = DType::f32;
  expect_refused(cache.desc, kv, "kv.indptr");
  kv = table_only;
  kv.indices.device = Device::cuda(0);  // the table must live on one device
  expect_refused(cache.desc, kv, "kv.indices");
}

// A table on a CUDA device: the device check reports what the host check
// reports for the same table, word for word (a build without CUDA answers
// Unsupported instead).
TEST(ValidatePageTable, DeviceTablesGiveTheHostMessages) {
  if (!cuda_backend_built()) {
    PagedKv kv;
    kv.indptr = TensorView::contiguous(reinterpret_cast<void*>(256), DType::int32, {4}, Device::cuda(0));
    PagedKvDesc desc = small_kv();
    desc.num_pages = 8;
    const Status s = validate_page_table(desc, kv);
    EXPECT_EQ(s.code(), StatusCode::unsupported) << s.to_string();
    EXPECT_NE(s.message().find("validate_page_table"), std::string::npos) << s.message();
    return;
  }
  KVS_REQUIRE_GPU();
  const Device device = Device::cuda(0);
  auto rng = make_rng();
  const PagedCache cache = make_paged_cache(rng, small_kv(), {5, 9, 0, 3}, Device::cpu());
  const auto check_both = [&](const std::string& array, const std::vector<std::int32_t>& values) {
    PagedKv host = cache.view(), dev;
    host.k_pages = host.v_pages = {};
    const Buffer host_bad = int_buffer(values, Device::cpu());
    array_of(host, array) = host_bad.view({static_cast<std::int64_t>(values.size())});
    const Buffer indptr = int_buffer(cache.indptr, device), indices = int_buffer(cache.indices, device),
                 last = int_buffer(cache.last_page_len, device), dev_bad = int_buffer(values, device);
    dev.indptr = indptr.view({static_cast<std::int64_t>(cache.indptr.size())});
    dev.indices = indices.view({static_cast<std::int64_t>(cache.indices.size())});
    dev.last_page_len = last.view({static_cast<std::int64_t>(cache.last_page_len.size())});
    array_of(dev, array) = dev_bad.view({static_cast<std::int64_t>(values.size())});
    const Status want = validate_page_table(cache.desc, host), got = validate_page_table(cache.desc, dev);
    EXPECT_EQ(got.code(), want.code()) << got.to_string();
    EXPECT_EQ(got.message(), want.message());
  };
  check_both("indices", cache.indices);  // a good table: ok on both
  for (const TableFault& f : table_faults(cache.indptr, cache.indices, cache.last_page_len, cache.desc.num_pages)) {
    SCOPED_TRACE(f.label);
    check_both(f.array, f.values);
  }
  // Two bad entries: the first in the host check's order wins on the device too.
  std::vector<std::int32_t> indices = cache.indices;
  indices.front() = -1;
  indices.back() = static_cast<std::int32_t>(cache.desc.num_pages);
  check_both("indices", indices);
  // indptr[B] beyond the indices tensor.
  std::vector<std::int32_t> indptr = cache.indptr;
  indptr.back() = static_cast<std::int32_t>(cache.indices.size()) + 1;
  check_both("indptr", indptr);
}

}  // namespace
}  // namespace kvserve::test
