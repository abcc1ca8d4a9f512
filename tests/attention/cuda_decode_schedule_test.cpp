// The paged-decode schedule prepare() builds on the host (plain C++, runs on
// any machine of a CUDA build): slices cover each request's visible keys
// exactly once, stay within the workspace's bounds, and with a fixed split
// depend only on the request's own length.
#include "harness/harness.hpp"

#if !KVSERVE_TEST_CUDA
KVS_NEEDS_CUDA_BACKEND(CudaDecodeSchedule)
#else
#include <algorithm>
#include <vector>

#include "cuda/paged_decode/decode_schedule.hpp"

namespace kvserve::test {
namespace {

using detail::cuda::DecodeWorkItem;

struct Built {
  detail::cuda::DecodeSizing sizing;
  std::vector<DecodeWorkItem> items;
};

Built build(const BatchPagedDecodeDesc& d, const std::vector<std::int32_t>& indptr,
            const std::vector<std::int32_t>& last) {
  Built out;
  out.sizing = detail::cuda::decode_sizing(d, /*sm_count=*/132);
  std::vector<unsigned char> staging(out.sizing.staging_bytes);
  const int n = detail::cuda::build_decode_schedule(out.sizing, d, {indptr, last}, staging.data());
  EXPECT_LE(n, out.sizing.max_items);
  const auto* items = reinterpret_cast<const DecodeWorkItem*>(staging.data() + out.sizing.items_offset);
  out.items.assign(items, items + n);
  return out;
}

BatchPagedDecodeDesc desc_for(int max_batch, int split, int window) {
  PagedKvDesc kv{.page_size = 16, .num_pages = 1 << 20, .num_kv_heads = 8, .head_dim = 128};
  return {.max_batch = max_batch, .num_qo_heads = 32, .kv = kv, .attn = {.window_left = window},
          .kv_split_tokens = split};
}

TEST(CudaDecodeSchedule, SlicesCoverEachRequestOnce) {
  const std::vector<std::int64_t> lens = {0, 1, 16, 17, 4096, 65536, 300};
  std::vector<std::int32_t> indptr, last;
  lengths_to_table(lens, &indptr, &last);
  for (int split : {0, 64})
    for (int window : {-1, 100}) {
      const Built s = build(desc_for(8, split, window), indptr, last);
      std::vector<std::int64_t> covered(lens.size(), 0);
      for (const auto& it : s.items) {
        ASSERT_LT(it.request, static_cast<int>(lens.size()));
        EXPECT_LE(it.begin, it.end);
        EXPECT_EQ(it.page_base, indptr[it.request]);
        covered[it.request] += it.end - it.begin;
        EXPECT_LT(it.split, it.num_splits);
      }
      for (std::size_t b = 0; b < lens.size(); ++b) {
        const std::int64_t visible = window >= 0 ? std::min<std::int64_t>(lens[b], window + 1) : lens[b];
        EXPECT_EQ(covered[b], visible) << "request " << b << " split " << split << " window " << window;
      }
    }
}

TEST(CudaDecodeSchedule, FixedSplitDependsOnlyOnTheRequest) {
  std::vector<std::int32_t> indptr_a, last_a, indptr_b, last_b;
  lengths_to_table({5000, 3, 70000}, &indptr_a, &last_a);
  lengths_to_table({1, 70000, 9, 12}, &indptr_b, &last_b);
  const Built a = build(desc_for(4, 256, -1), indptr_a, last_a);
  const Built b = build(desc_for(4, 256, -1), indptr_b, last_b);
  auto slices_of = [](const Built& s, int request) {
    std::vector<std::pair<int, int>> out;
    for (const auto& it : s.items)
      if (it.request == request) out.emplace_back(it.begin, it.end);
    return out;
  };
  EXPECT_EQ(slices_of(a, 2), slices_of(b, 1));  // the 70000-token request, in two batches
  EXPECT_LE(slices_of(a, 2).size(), static_cast<std::size_t>(a.sizing.max_splits));
}


// Auto split on an H100-sized device (132 SMs, 264 slots of bf16 d=128
// blocks, 8 KV heads: 33 slices a wave): one wave, never a partial second
// one, and equal slices within a request.
TEST(CudaDecodeSchedule, AutoSplitFillsOneWaveWithEqualSlices) {
  struct Case {
    std::vector<std::int64_t> lens;
    int slices_per_request;
  };
  for (const Case& c : {Case{{4096}, 32}, Case{{32768}, 32}, Case{std::vector<std::int64_t>(16, 4096), 2},
                        Case{std::vector<std::int64_t>(8, 32768), 4}, Case{std::vector<std::int64_t>(64, 4096), 1}}) {
    std::vector<std::int32_t> indptr, last;
    lengths_to_table(c.lens, &indptr, &last);
    const Built s = build(desc_for(static_cast<int>(c.lens.size()), 0, -1), indptr, last);
    const int blocks_per_item = 8 * s.sizing.head_chunks;
    EXPECT_LE(static_cast<int>(s.items.size()) * blocks_per_item,
              std::max(132 * s.sizing.shape.blocks_per_sm, static_cast<int>(c.lens.size()) * blocks_per_item));
    for (const auto& it : s.items) {
      EXPECT_EQ(it.num_splits, c.slices_per_request) << c.lens.size() << " x " << c.lens[0];
      EXPECT_EQ(it.end - it.begin, c.lens[0] / c.slices_per_request) << "equal slices";
    }
  }
}

}  // namespace
}  // namespace kvserve::test
#endif  // KVSERVE_TEST_CUDA
