// The host-side page allocator. Invariants kept by every operation:
// - a live sequence of length L holds exactly ceil(L / page_size) pages;
// - refcount_[p] is the number of (sequence, slot) entries naming page p, and a
//   page is on the free list iff its count is 0;
// - a page with a count above 1 is full: fork() shares only full pages, and
//   truncate() refuses to leave a shared page partly filled, so appends (which
//   write only past a sequence's length) never touch another sequence's tokens.
#include "kvserve/block_manager.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_set>

#include "core/check.hpp"

namespace kvserve {
namespace {
constexpr const char* kOp = "BlockManager";
constexpr std::int64_t kMaxReservedTokens = std::int64_t{1} << 61;
}  // namespace

using detail::invalid_arg;
using detail::to_text;

BlockManager::BlockManager(std::int64_t num_pages, int page_size)
    : page_size_(page_size), refcount_(static_cast<std::size_t>(num_pages), 0) {
  // Highest id at the front, so pages are handed out from 0 upwards.
  free_.reserve(static_cast<std::size_t>(num_pages));
  for (std::int64_t p = num_pages - 1; p >= 0; --p) free_.push_back(static_cast<std::int32_t>(p));
}

Result<BlockManager> BlockManager::create(std::int64_t num_pages, int page_size) {
  if (num_pages < 1 || num_pages > kMaxPages)
    return detail::invalid_field(kOp, "num_pages", "in [1, 2^31 - 1] (page ids are int32)", to_text(num_pages));
  KVSERVE_TRY(detail::check_size(kOp, "page_size", page_size, kvserve::kMaxPageSize));
  return BlockManager(num_pages, page_size);
}

Result<std::int32_t> BlockManager::refcount(std::int64_t page) const {
  if (page < 0 || page >= num_pages())
    return invalid_arg(kOp, "page", "a page id in [0, " + to_text(num_pages()) + ")", to_text(page));
  return refcount_[static_cast<std::size_t>(page)];
}

// ------------------------------------------------------------- helpers -----

Status BlockManager::unknown(SeqId seq) const {
  return invalid_arg(kOp, "seq", "a live sequence id", to_text(seq) + " (never created or already released)");
}

Status BlockManager::check_tokens(std::string_view name, std::int64_t tokens) const {
  // Lengths stay below 2^62 (num_pages * page_size), so the cap keeps
  // length + tokens from overflowing.
  if (tokens >= 0 && tokens <= kMaxReservedTokens) return Status::ok();
  return invalid_arg(kOp, name, "in [0, 2^61]", to_text(tokens));
}

Status BlockManager::out_of_pages(const std::string& what, std::int64_t needed) const {
  return Status::resource_exhausted(std::string(kOp) + ": out of pages: " + what + " needs " + to_text(needed) +
                                    " more pages, " + to_text(free_pages()) + " of " + to_text(num_pages()) +
                                    " are free");
}

std::int64_t BlockManager::new_pages(const Sequence& s, std::int64_t tokens) const {
  return pages_for(s.length + tokens) - static_cast<std::int64_t>(s.pages.size());
}

void BlockManager::grow(Sequence& s, std::int64_t tokens) {
  s.length += tokens;
  while (static_cast<std::int64_t>(s.pages.size()) < pages_for(s.length)) {
    const std::int32_t page = free_.back();
    free_.pop_back();
    refcount_[static_cast<std::size_t>(page)] = 1;
    s.pages.push_back(page);
  }
}

void BlockManager::drop_page(std::int32_t page) {
  if (--refcount_[static_cast<std::size_t>(page)] == 0) free_.push_back(page);
}

// ---------------------------------------------------------- operations -----

Result<SeqId> BlockManager::add_sequence(std::int64_t tokens) {
  KVSERVE_TRY(check_tokens("tokens", tokens));
  Sequence s;
  const std::int64_t needed = new_pages(s, tokens);
  if (needed > free_pages()) return out_of_pages("add_sequence(" + to_text(tokens) + " tokens)", needed);
  grow(s, tokens);
  seqs_.emplace(next_id_, std::move(s));
  return next_id_++;
}

Result<SeqId> BlockManager::fork(SeqId parent) {
  auto it = seqs_.find(parent);
  if (it == seqs_.end()) return unknown(parent);
  return fork(parent, it->second.length);
}

Result<SeqId> BlockManager::fork(SeqId parent, std::int64_t tokens) {
  auto it = seqs_.find(parent);
  if (it == seqs_.end()) return unknown(parent);
  const Sequence& p = it->second;
  if (tokens < 0 || tokens > p.length)
    return invalid_arg(kOp, "tokens", "in [0, length of the parent = " + to_text(p.length) + "]", to_text(tokens));
  const std::int64_t shared = tokens / page_size_;  // the full pages among the first `tokens` tokens
  Sequence child;
  child.pages.assign(p.pages.begin(), p.pages.begin() + shared);
  child.length = shared * page_size_;
  child.prefix_pages = shared;
  for (std::int32_t page : child.pages) ++refcount_[static_cast<std::size_t>(page)];
  seqs_.emplace(next_id_, std::move(child));
  return next_id_++;
}

Result<std::int64_t> BlockManager::pages_needed(SeqId seq, std::int64_t tokens) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return unknown(seq);
  KVSERVE_TRY(check_tokens("tokens", tokens));
  return new_pages(it->second, tokens);
}

Status BlockManager::append_tokens(SeqId seq, std::int64_t tokens) {
  return append_tokens(std::span<const SeqId>(&seq, 1), tokens);
}

Status BlockManager::append_tokens(std::span<const SeqId> seqs, std::int64_t tokens) {
  KVSERVE_TRY(check_tokens("tokens", tokens));
  // Validate everything and count the pages first: nothing changes unless all fit.
  std::vector<Sequence*> targets;
  targets.reserve(seqs.size());
  std::unordered_set<SeqId> seen;
  std::int64_t needed = 0;
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    auto it = seqs_.find(seqs[i]);
    if (it == seqs_.end()) return unknown(seqs[i]);
    if (!seen.insert(seqs[i]).second)
      return invalid_arg(kOp, "seqs", "distinct sequence ids",
                         to_text(seqs[i]) + " twice (entry " + to_text(std::int64_t(i)) + ")");
    // Saturating: each term is at most 2^61 + 1, so the sum cannot overflow.
    needed = std::min(needed + new_pages(it->second, tokens), kMaxReservedTokens);
    targets.push_back(&it->second);
  }
  if (needed > free_pages()) {
    const std::string what =
        seqs.size() == 1 ? "append_tokens(seq " + to_text(seqs[0]) + ", " + to_text(tokens) + " tokens)"
                         : "append_tokens(" + to_text(std::int64_t(seqs.size())) + " sequences, " + to_text(tokens) +
                               " tokens each)";
    return out_of_pages(what, needed);
  }
  for (Sequence* s : targets) grow(*s, tokens);
  return Status::ok();
}

Status BlockManager::truncate(SeqId seq, std::int64_t length) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return unknown(seq);
  Sequence& s = it->second;
  if (length < 0 || length > s.length)
    return invalid_arg(kOp, "length", "in [0, current length = " + to_text(s.length) + "]", to_text(length));
  const std::int64_t keep = pages_for(length);
  if (length % page_size_ != 0) {
    const std::int32_t last = s.pages[static_cast<std::size_t>(keep - 1)];
    const std::int64_t sharers = refcount_[static_cast<std::size_t>(last)];
    if (sharers > 1)
      return invalid_arg(kOp, "length",
                         "a length that does not end inside a shared page (page " + to_text(std::int64_t{last}) +
                             " is shared by " + to_text(sharers) + " sequences)",
                         to_text(length));
  }
  while (static_cast<std::int64_t>(s.pages.size()) > keep) {
    drop_page(s.pages.back());
    s.pages.pop_back();
  }
  s.length = length;
  // The prefix counts only full pages: one cut open may be written again.
  s.prefix_pages = std::min(s.prefix_pages, length / page_size_);
  return Status::ok();
}

Status BlockManager::release(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return unknown(seq);
  for (std::int32_t page : it->second.pages) drop_page(page);
  seqs_.erase(it);
  return Status::ok();
}

Result<SequenceInfo> BlockManager::sequence(SeqId seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return unknown(seq);
  const Sequence& s = it->second;
  return SequenceInfo{s.length, s.prefix_pages, s.pages};
}

// -------------------------------------------------------------- tables -----

Status BlockManager::append_row(SeqId seq, TablePart part, PageTable* table) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return unknown(seq);
  const Sequence& s = it->second;
  const std::int64_t total = static_cast<std::int64_t>(s.pages.size());
  std::int64_t first = 0, count = total, tokens = s.length;
  if (part == TablePart::prefix) {
    count = s.prefix_pages;
    tokens = s.prefix_pages * page_size_;
  } else if (part == TablePart::suffix) {
    first = s.prefix_pages;
    count = total - s.prefix_pages;
    tokens = s.length - s.prefix_pages * page_size_;
  }
  if (static_cast<std::int64_t>(table->indices.size()) + count > kMaxPages)
    return invalid_arg(kOp, "seqs", "at most 2^31 - 1 pages in one table (indptr is int32)", "more");
  table->indices.insert(table->indices.end(), s.pages.begin() + first, s.pages.begin() + first + count);
  table->indptr.push_back(static_cast<std::int32_t>(table->indices.size()));
  table->last_page_len.push_back(count == 0 ? 0 : static_cast<std::int32_t>(tokens - (count - 1) * page_size_));
  return Status::ok();
}

Result<PageTable> BlockManager::page_table(std::span<const SeqId> seqs, TablePart part) const {
  if (part != TablePart::all && part != TablePart::prefix && part != TablePart::suffix)
    return Status::invalid_argument("BlockManager: argument 'part': expected all, prefix or suffix, got " +
                                    std::to_string(static_cast<int>(part)));
  PageTable t;
  t.indptr.reserve(seqs.size() + 1);
  t.last_page_len.reserve(seqs.size());
  t.indptr.push_back(0);
  for (SeqId seq : seqs) KVSERVE_TRY(append_row(seq, part, &t));
  return t;
}

Result<CascadeTables> BlockManager::cascade_tables(std::span<const std::vector<SeqId>> groups) const {
  CascadeTables t;
  t.group_indptr.push_back(0);
  t.prefix.indptr.push_back(0);
  t.suffix.indptr.push_back(0);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::vector<SeqId>& members = groups[g];
    if (members.empty()) {
      t.prefix.indptr.push_back(t.prefix.indptr.back());
      t.prefix.last_page_len.push_back(0);
    } else {
      KVSERVE_TRY(append_row(members[0], TablePart::prefix, &t.prefix));
    }
    const std::span<const std::int32_t> prefix(t.prefix.indices.data() + t.prefix.indptr[g],
                                               t.prefix.indices.data() + t.prefix.indptr[g + 1]);
    for (std::size_t m = 0; m < members.size(); ++m) {
      KVSERVE_TRY(append_row(members[m], TablePart::suffix, &t.suffix));
      const Sequence& s = seqs_.find(members[m])->second;
      if (!std::ranges::equal(prefix, std::span(s.pages.data(), static_cast<std::size_t>(s.prefix_pages))))
        return invalid_arg(kOp, "groups", "members of a group sharing one prefix (forks of one sequence at one point)",
                           "group " + to_text(std::int64_t(g)) + ": sequence " + to_text(members[m]) +
                               " has other prefix pages than sequence " + to_text(members[0]));
    }
    t.group_indptr.push_back(static_cast<std::int32_t>(t.suffix.last_page_len.size()));
  }
  return t;
}

}  // namespace kvserve
