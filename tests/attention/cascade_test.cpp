// CascadeAttention against the fp64 oracle over prefix + suffix, and against
// BatchPagedDecode over the concatenated page lists, on every test device.
#include "attention/attention_test_util.hpp"
#include "harness/harness.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::test {
namespace {

struct CascadeCase {
  DType dtype;
  int head_dim, num_kv_heads, group, page_size;
  KvLayout layout;
  std::vector<std::int32_t> group_indptr;  // [G + 1]
  std::vector<std::int64_t> prefix_lens;   // [G]
  std::vector<std::int64_t> suffix_lens;   // [B]
  AttentionParams attn = {};
};

// A cache whose rows 0..G are the groups' prefixes and G..G+B the requests'
// suffixes, with the two page tables cut from it.
struct CascadeInputs {
  PagedCache cache;
  PageTable prefix, suffix;
};

CascadeInputs make_inputs(std::mt19937_64& rng, const CascadeCase& c, Device device) {
  std::vector<std::int64_t> lens = c.prefix_lens;
  lens.insert(lens.end(), c.suffix_lens.begin(), c.suffix_lens.end());
  CascadeInputs in;
  in.cache = make_paged_cache(rng,
                              {.page_size = c.page_size, .num_kv_heads = c.num_kv_heads, .head_dim = c.head_dim,
                               .dtype = c.dtype, .layout = c.layout},
                              lens, device);
  const std::int64_t groups = static_cast<std::int64_t>(c.prefix_lens.size());
  for (std::int64_t row = 0; row < static_cast<std::int64_t>(lens.size()); ++row)
    (row < groups ? in.prefix : in.suffix).add_row(pages_of(in.cache, row), in.cache.last_page_len[row]);
  in.prefix.upload(device);
  in.suffix.upload(device);
  return in;
}

CascadeAttentionDesc cascade_desc(const CascadeCase& c, const PagedKvDesc& kv) {
  return {.max_batch = static_cast<int>(c.suffix_lens.size()), .max_groups = static_cast<int>(c.prefix_lens.size()) + 1,
          .num_qo_heads = c.num_kv_heads * c.group, .kv = kv, .q_dtype = c.dtype, .attn = c.attn};
}

struct CascadeRun {
  Buffer q, out, lse;
};

// Runs the plan on fresh queries (poisoned outputs) and waits for it.
void run_cascade(CascadeAttentionPlan& plan, std::mt19937_64& rng, const CascadeCase& c,
                 const CascadeInputs& in, Device device, CascadeRun* r) {
  const int hq = c.num_kv_heads * c.group, d = c.head_dim;
  const std::int64_t batch = static_cast<std::int64_t>(c.suffix_lens.size());
  const std::int64_t groups = static_cast<std::int64_t>(c.prefix_lens.size());
  *r = {Buffer(c.dtype, batch * hq * d, device), Buffer(c.dtype, batch * hq * d, device),
        Buffer(DType::f32, batch * hq, device)};
  r->q.fill_uniform(rng, -2, 2);
  expect_nonzero(r->q.values(), "q");
  expect_nonzero(in.cache.k.values(), "k pool");
  r->out.poison();
  r->lse.poison();
  const Buffer group_dev = int_buffer(c.group_indptr, device);
  DeviceMemory ws(device, plan.workspace_bytes());
  ASSERT_TRUE(plan.prepare({c.group_indptr, in.prefix.lengths(), in.suffix.lengths()}, workspace_of(ws), {}));
  const Status s = plan.run({.q = r->q.view({batch, hq, d}), .group_indptr = group_dev.view({groups + 1}),
                             .prefix = in.prefix.view(in.cache), .suffix = in.suffix.view(in.cache),
                             .out = r->out.view({batch, hq, d}), .lse = r->lse.view({batch, hq})},
                            workspace_of(ws), {});
  ASSERT_TRUE(s) << s.to_string();
  synchronize(device);
}

std::string label(const CascadeCase& c, Device device) {
  return attention_label(c.dtype, c.head_dim, c.head_dim, c.num_kv_heads, c.group, c.attn, device) +
         " page=" + std::to_string(c.page_size) + " " + std::string(name_of(c.layout));
}

void expect_matches_oracle(const CascadeCase& c, Device device) {
  SCOPED_TRACE(label(c, device));
  auto rng = make_rng();
  const CascadeInputs in = make_inputs(rng, c, device);
  KVS_CREATE_OR_SKIP(plan, CascadeAttentionPlan, cascade_desc(c, in.cache.desc), device);
  CascadeRun r;
  run_cascade(*plan, rng, c, in, device, &r);
  if (::testing::Test::HasFatalFailure()) return;
  const int hq = c.num_kv_heads * c.group, d = c.head_dim;
  const std::int64_t groups = static_cast<std::int64_t>(c.prefix_lens.size());
  const oracle::AttentionSpec spec = attention_spec(hq, c.num_kv_heads, d, d, c.attn, /*causal=*/true);
  ReferenceAttention ref;
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t b = c.group_indptr[g]; b < c.group_indptr[g + 1]; ++b) {
      std::vector<double> keys = in.cache.keys(g), values = in.cache.values(g);
      append(&keys, in.cache.keys(groups + b));
      append(&values, in.cache.values(groups + b));
      ref.add(spec, slice(r.q, b * hq * d, hq * d), keys, values, 1, c.prefix_lens[g] + c.suffix_lens[b]);
    }
  }
  expect_attention(r.out, r.lse, ref);
}

class CascadeAttentionTest : public DeviceTest {};

TEST_P(CascadeAttentionTest, DtypesAndHeadDims) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int d : {64, 128, 256, 80})
      expect_matches_oracle({t, d, 2, 2, 16, KvLayout::NHD, {0, 2, 3}, {40, 7}, {5, 0, 19}}, GetParam());
}

TEST_P(CascadeAttentionTest, GroupsPrefixesAndSuffixes) {
  // An empty group, a group without a prefix, requests without a suffix, a
  // prefix that ends mid-page, one page, a full last page.
  for (KvLayout layout : {KvLayout::NHD, KvLayout::HND})
    expect_matches_oracle({DType::bf16, 128, 2, 4, 16, layout, {0, 3, 3, 4, 6}, {33, 50, 0, 16},
                           {1, 16, 0, 9, 70, 2}},
                          GetParam());
  expect_matches_oracle({DType::f32, 64, 1, 2, 1, KvLayout::NHD, {0, 2}, {5}, {0, 3}}, GetParam());
}

TEST_P(CascadeAttentionTest, GqaRatios) {
  for (int group : {1, 4, 5, 8})
    expect_matches_oracle({DType::bf16, 64, 2, group, 8, KvLayout::NHD, {0, 2}, {20}, {3, 11}}, GetParam());
}

TEST_P(CascadeAttentionTest, SoftCapAndWindowAcrossThePrefixBoundary) {
  // The window reaches back into the prefix for short suffixes only.
  expect_matches_oracle({DType::bf16, 128, 2, 4, 16, KvLayout::NHD, {0, 3}, {60}, {2, 10, 30}, {.window_left = 12}},
                        GetParam());
  expect_matches_oracle({DType::f16, 64, 2, 2, 16, KvLayout::HND, {0, 2}, {25}, {4, 0}, {.logits_soft_cap = 8.f}},
                        GetParam());
}

TEST_P(CascadeAttentionTest, MatchesPagedDecodeOverConcatenatedPages) {
  const Device device = GetParam();
  // Page-aligned prefixes, so that prefix pages + suffix pages is a valid table.
  const CascadeCase c{DType::f32, 128, 2, 4, 16, KvLayout::NHD, {0, 3, 5}, {32, 64}, {7, 0, 16, 30, 1}};
  SCOPED_TRACE(label(c, device));
  auto rng = make_rng();
  const CascadeInputs in = make_inputs(rng, c, device);
  KVS_CREATE_OR_SKIP(plan, CascadeAttentionPlan, cascade_desc(c, in.cache.desc), device);
  CascadeRun r;
  run_cascade(*plan, rng, c, in, device, &r);
  if (HasFatalFailure()) return;
  const std::int64_t batch = static_cast<std::int64_t>(c.suffix_lens.size());
  const std::int64_t groups = static_cast<std::int64_t>(c.prefix_lens.size());
  const int hq = c.num_kv_heads * c.group, d = c.head_dim;
  PageTable joined;
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t b = c.group_indptr[g]; b < c.group_indptr[g + 1]; ++b) {
      std::vector<std::int32_t> pages(pages_of(in.cache, g).begin(), pages_of(in.cache, g).end());
      const auto suffix = pages_of(in.cache, groups + b);
      pages.insert(pages.end(), suffix.begin(), suffix.end());
      joined.add_row(pages, in.cache.last_page_len[suffix.empty() ? g : groups + b]);
    }
  }
  joined.upload(device);
  BatchPagedDecodeDesc desc{.max_batch = static_cast<int>(batch), .num_qo_heads = hq, .kv = in.cache.desc,
                            .q_dtype = c.dtype};
  KVS_CREATE_OR_SKIP(decode, BatchPagedDecodePlan, desc, device);
  DeviceMemory ws(device, decode->workspace_bytes());
  ASSERT_TRUE(decode->prepare(joined.lengths(), workspace_of(ws), {}));
  Buffer out(c.dtype, batch * hq * d, device), lse(DType::f32, batch * hq, device);
  out.poison();
  lse.poison();
  ASSERT_TRUE(decode->run({.q = r.q.view({batch, hq, d}), .kv = joined.view(in.cache),
                           .out = out.view({batch, hq, d}), .lse = lse.view({batch, hq})},
                          workspace_of(ws), {}));
  synchronize(device);
  out.download();
  lse.download();
  r.out.download();
  r.lse.download();
  expect_close(r.out.values(), out.values(), c.dtype, "cascade out vs decode out");
  expect_close(r.lse.values(), lse.values(), DType::f32, "cascade lse vs decode lse");
}

INSTANTIATE_TEST_SUITE_P(Devices, CascadeAttentionTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
