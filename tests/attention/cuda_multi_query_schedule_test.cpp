// The schedules the multi-query plans build on the host (plain C++, runs on
// any machine of a CUDA build): cascade items cover each group's visible
// prefix keys once per slice and row tile, every request's partial slots are
// written by exactly one item each, and everything stays inside the
// workspace the descriptor sized; prefill records number the tiles.
#include "harness/harness.hpp"

#if !KVSERVE_TEST_CUDA
KVS_NEEDS_CUDA_BACKEND(CudaMultiQuerySchedule)
#else
#include <algorithm>
#include <map>
#include <tuple>
#include <vector>

#include "cuda/multi_query/multi_query_schedule.hpp"

namespace kvserve::test {
namespace {

using detail::cuda::MultiQueryItem;
using detail::cuda::MultiQueryRowInfo;

struct CascadeCase {
  std::vector<std::int32_t> group_indptr;
  std::vector<std::int64_t> prefix_lens, suffix_lens;
  int group = 4, window = -1;
};

void check_cascade(const CascadeCase& c) {
  const int hkv = 8, groups = static_cast<int>(c.prefix_lens.size());
  const int batch = static_cast<int>(c.suffix_lens.size());
  CascadeAttentionDesc d{.max_batch = batch, .max_groups = groups, .num_qo_heads = hkv * c.group,
                         .kv = {.page_size = 16, .num_pages = 1 << 20, .num_kv_heads = hkv, .head_dim = 128},
                         .attn = {.window_left = c.window}};
  const auto z = detail::cuda::cascade_sizing(d, /*sm_count=*/132, detail::cuda::multi_query_shape(d.kv.head_dim));
  std::vector<std::int32_t> pi, pl, si, sl;
  lengths_to_table(c.prefix_lens, &pi, &pl);
  lengths_to_table(c.suffix_lens, &si, &sl);
  std::vector<unsigned char> staging(z.staging_bytes);
  const int n = detail::cuda::build_cascade_schedule(z, d, {c.group_indptr, {pi, pl}, {si, sl}}, staging.data());
  ASSERT_LE(n, z.max_items);
  const auto* rows = reinterpret_cast<const MultiQueryRowInfo*>(staging.data() + z.row_info_offset);
  const auto* items = reinterpret_cast<const MultiQueryItem*>(staging.data() + z.items_offset);

  // (request, slot, head) -> items that write it; (group, key) -> row tiles reading it.
  std::map<std::tuple<int, int, int>, int> writes;
  std::map<std::pair<int, std::int64_t>, int> key_reads;
  for (int i = 0; i < n; ++i) {
    const MultiQueryItem& it = items[i];
    ASSERT_LE(0, it.kv_begin);
    ASSERT_LT(it.kv_begin, it.kv_end);
    ASSERT_LE(it.kv_end, it.kv_len);
    const int first_row = it.row_begin, last_row = std::min(it.row_begin + z.shape.rows, it.num_tokens * c.group) - 1;
    for (int x = first_row; x <= last_row; ++x) ++writes[{it.q_row0 + x / c.group, it.slot, x % c.group}];
    if (it.source == 0) {
      const int g = static_cast<int>(std::upper_bound(c.group_indptr.begin(), c.group_indptr.end(), it.q_row0) -
                                     c.group_indptr.begin()) - 1;
      EXPECT_EQ(it.kv_len, c.prefix_lens[g]);
      for (std::int64_t k = it.kv_begin; k < it.kv_end; ++k) ++key_reads[{g, k}];
    }
  }
  int slot_end = 0;
  for (int g = 0; g < groups; ++g) {
    const int requests = c.group_indptr[g + 1] - c.group_indptr[g];
    const int tiles = (requests * c.group + z.shape.rows - 1) / z.shape.rows;
    std::int64_t first_seen = c.prefix_lens[g];
    for (int b = c.group_indptr[g]; b < c.group_indptr[g + 1]; ++b) {
      const std::int64_t pos = c.prefix_lens[g] + c.suffix_lens[b] - 1;
      EXPECT_EQ(rows[b].position, pos);
      first_seen = std::min(first_seen, c.window >= 0 ? std::max<std::int64_t>(0, pos - c.window) : 0);
      EXPECT_EQ(rows[b].slot_base, slot_end) << "request " << b;
      slot_end += rows[b].slot_count;
      for (int s = 0; s < rows[b].slot_count; ++s)
        for (int h = 0; h < c.group; ++h)
          EXPECT_EQ((writes[{b, s, h}]), 1) << "request " << b << " slot " << s << " head " << h;
    }
    // Every prefix key some request sees is read by each row tile once, and
    // no other key is read.
    for (std::int64_t k = 0; k < c.prefix_lens[g]; ++k)
      EXPECT_EQ((key_reads[{g, k}]), k >= first_seen && requests > 0 ? tiles : 0) << "group " << g << " key " << k;
  }
  EXPECT_LE(slot_end, z.max_slots);
  EXPECT_EQ(writes.size(), static_cast<std::size_t>(slot_end) * c.group);
}

TEST(CudaMultiQuerySchedule, CascadeSlotsAndPrefixKeys) {
  // Few groups: prefixes are cut into slices; an empty group; a group
  // without a prefix; requests without a suffix (every third).
  std::vector<std::int64_t> suffixes;
  for (int b = 0; b < 40; ++b) suffixes.push_back(b % 3 == 0 ? 0 : b * 37 % 300);
  check_cascade({{0, 3, 3, 40}, {5000, 100, 0}, suffixes});
  // A window: only the keys some request's window reaches are read.
  check_cascade({{0, 2, 4}, {3000, 64}, {10, 900, 0, 5}, 4, 700});
  // Groups wider than a row tile.
  check_cascade({{0, 5}, {777}, {1, 2, 3, 4, 5}, 80});
}

TEST(CudaMultiQuerySchedule, PrefillRecordsNumberTheTiles) {
  const auto z = detail::cuda::prefill_sizing(4, 32, 8, 256, 132, detail::cuda::multi_query_shape(256));
  ASSERT_EQ(z.shape.rows, 64);
  std::vector<unsigned char> staging(z.staging_bytes);
  const std::vector<std::int32_t> qo_indptr{0, 5, 5, 130, 131};
  const std::vector<detail::cuda::KvSpan> kv{{0, 9}, {1, 3}, {2, 140}, {12, 1}};
  const std::size_t bytes = detail::cuda::build_prefill_schedule(z, qo_indptr, kv, staging.data());
  EXPECT_LE(bytes, z.staging_bytes);
  const auto* r = reinterpret_cast<const detail::cuda::MultiQueryRequest*>(staging.data() + z.items_offset);
  // 5 x 4 rows: 1 tile; none; 125 x 4 = 500 rows: 8 tiles; 1 tile.
  const std::vector<int> first_tiles{0, 1, 1, 9, 10};
  for (int b = 0; b <= 4; ++b) EXPECT_EQ(r[b].first_tile, first_tiles[b]) << "request " << b;
  EXPECT_EQ(r[2].q_row0, 5);
  EXPECT_EQ(r[2].kv_len, 140);
  EXPECT_GE(detail::cuda::prefill_max_tiles(z, 131, 4), 10);
}

}  // namespace
}  // namespace kvserve::test
#endif  // KVSERVE_TEST_CUDA
