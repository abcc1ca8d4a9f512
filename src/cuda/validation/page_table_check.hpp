// The device half of validate_page_table (host-visible, no CUDA types): a
// kernel finds the first bad entry of a device page table in the order the
// host check reports (indptr, then the indices count, then request by
// request: its page ids by position, then its last_page_len), as one 64-bit
// order key: stage in the top 2 bits, then request (31 bits), then position.
#pragma once

#include <cstdint>

namespace kvserve::detail::cuda {

enum class PageTableStage : unsigned { indptr = 0, indices_count = 1, request = 2 };
inline constexpr std::int64_t kLastPageLenPosition = 0x7fffffff;  // after every page of the request
inline constexpr unsigned long long kNoBadEntry = ~0ull;

// indptr: `request` is the entry's index; request: the request and the page's
// position in it (kLastPageLenPosition for last_page_len).
constexpr unsigned long long page_table_key(PageTableStage stage, std::int64_t request,
                                                    std::int64_t position) {
  return (static_cast<unsigned long long>(stage) << 62) | (static_cast<unsigned long long>(request) << 31) |
         static_cast<unsigned long long>(position);
}
constexpr PageTableStage stage_of(unsigned long long key) { return static_cast<PageTableStage>(key >> 62); }
constexpr std::int64_t request_of(unsigned long long key) {
  return static_cast<std::int64_t>((key >> 31) & 0x7fffffffull);
}

struct PageTableCheckParams {
  const std::int32_t* indptr = nullptr;
  const std::int32_t* indices = nullptr;
  const std::int32_t* last_page_len = nullptr;
  std::int64_t batch = 0, num_indices = 0, num_pages = 0;
  int page_size = 0;
  unsigned long long* first_bad = nullptr;  // kNoBadEntry on entry; the smallest bad key on exit
};

// The cudaError_t as an int.
int launch_page_table_check(const PageTableCheckParams& p, void* stream);

}  // namespace kvserve::detail::cuda
