// A host-side page allocator for the paged KV cache: it decides which pool
// pages hold which sequence's tokens, shares the pages of common prefixes
// between sequences by reference counting, and produces the page tables
// (indptr / indices / last_page_len) the paged ops take.
//
// It only does bookkeeping: it never touches the pools. The serving loop reads
// like this (docs/kv_cache.md has the long form):
//
//   auto bm = BlockManager::create(num_pages, page_size);
//   auto sys = bm->add_sequence(prompt_len);          // reserve the system prompt
//   ... prefill sys (PagedKvAppend ragged over bm->page_table(std::vector{*sys})) ...
//   auto r = bm->fork(*sys);                          // a request shares its full pages
//   bm->append_tokens(*r, user_len); ... prefill ...
//   each step: bm->append_tokens(running, 1);         // one slot per request, all or nothing
//              tables = bm->cascade_tables(groups);   // prefix + suffix page tables
//              PagedKvAppend (decode) + CascadeAttention with the same tables
//   bm->release(*r);                                  // pages return with their last reference
//
// Sharing rule: a page referenced by more than one sequence is full and is
// never written again. fork() therefore shares only full pages; the tail of a
// parent's partly filled last page is not shared (fork at a multiple of
// page_size, or append the tail to the child again). Nothing else is needed to
// keep shared pages intact: sequences only write past their length, and
// truncate() refuses to cut inside a shared page.
//
// Every operation either succeeds or returns a Status and leaves the manager
// unchanged. Running out of pages is StatusCode::resource_exhausted, with a
// message that says how many pages were needed and how many were free, so a
// scheduler can preempt a sequence and retry.
//
// Not thread-safe: one scheduler thread owns it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kvserve/attention.hpp"

namespace kvserve {

// A sequence's handle. Ids are never reused, so a released id stays invalid.
using SeqId = std::int64_t;

// A CSR page table over a list of sequences, as host vectors ready for
// prepare() (lengths()) and for upload to the device (PagedKv).
struct PageTable {
  std::vector<std::int32_t> indptr;         // [B + 1]
  std::vector<std::int32_t> indices;        // [indptr[B]] page ids
  std::vector<std::int32_t> last_page_len;  // [B]; 0 for a row without pages
  std::int64_t batch() const { return static_cast<std::int64_t>(last_page_len.size()); }
  PagedKvLengths lengths() const { return {indptr, last_page_len}; }
};

// Page tables for CascadeAttention: group g's requests are
// members[group_indptr[g] .. group_indptr[g + 1]); prefix has one row per
// group (the pages its members share), suffix one row per request (the rest).
struct CascadeTables {
  std::vector<std::int32_t> group_indptr;  // [G + 1]
  PageTable prefix;                        // G rows
  PageTable suffix;                        // B rows, in group order
  CascadeLengths lengths() const { return {group_indptr, prefix.lengths(), suffix.lengths()}; }
};

// Which of a sequence's pages a table row lists.
enum class TablePart : std::uint8_t {
  all,     // every page: the whole sequence
  prefix,  // the pages it got from fork() (its shared prefix; none if not forked)
  suffix,  // the pages after its shared prefix: its own tokens
};

// What a sequence holds (a view: valid until the next change to the manager).
struct SequenceInfo {
  std::int64_t length = 0;          // tokens reserved
  std::int64_t prefix_pages = 0;    // leading pages obtained from fork()
  std::span<const std::int32_t> pages;
};

class BlockManager {
 public:
  // num_pages in [1, kMaxPages] (page ids are int32), page_size in [1, kMaxPageSize].
  static Result<BlockManager> create(std::int64_t num_pages, int page_size);

  int page_size() const { return page_size_; }
  std::int64_t num_pages() const { return static_cast<std::int64_t>(refcount_.size()); }
  std::int64_t free_pages() const { return static_cast<std::int64_t>(free_.size()); }
  std::int64_t num_sequences() const { return static_cast<std::int64_t>(seqs_.size()); }
  // How many sequences reference page `page` (0: free).
  Result<std::int32_t> refcount(std::int64_t page) const;

  // A new sequence with `tokens` slots reserved.
  Result<SeqId> add_sequence(std::int64_t tokens = 0);
  // A new sequence sharing the full pages among the first `tokens` (default:
  // all) tokens of `parent`; its length is the number of tokens those pages
  // hold (a multiple of page_size). Allocates no page.
  Result<SeqId> fork(SeqId parent);
  Result<SeqId> fork(SeqId parent, std::int64_t tokens);
  // Reserves `tokens` more slots at the end of the sequence, taking a new
  // page whenever the last one is full.
  Status append_tokens(SeqId seq, std::int64_t tokens = 1);
  // The same for every sequence of the list (no duplicates), all or nothing:
  // the decode step's "one slot per running request".
  Status append_tokens(std::span<const SeqId> seqs, std::int64_t tokens = 1);
  // Pages append_tokens(seq, tokens) would take.
  Result<std::int64_t> pages_needed(SeqId seq, std::int64_t tokens) const;
  // Shortens the sequence to `length` tokens (e.g. rejected speculative
  // tokens), releasing the pages it no longer needs. Refused when the new last
  // page would be partly filled and shared (the next append would write into
  // another sequence's tokens).
  Status truncate(SeqId seq, std::int64_t length);
  // Forgets the sequence; each of its pages returns to the free list when its
  // last reference goes.
  Status release(SeqId seq);

  Result<SequenceInfo> sequence(SeqId seq) const;

  // One row per sequence, in order (duplicates allowed).
  Result<PageTable> page_table(std::span<const SeqId> seqs, TablePart part = TablePart::all) const;
  // Tables for CascadeAttention over groups of sequences; the members of a
  // group must share the same prefix pages (forks of one sequence at one point).
  Result<CascadeTables> cascade_tables(std::span<const std::vector<SeqId>> groups) const;

 private:
  struct Sequence {
    std::int64_t length = 0;
    std::int64_t prefix_pages = 0;
    std::vector<std::int32_t> pages;
  };
  BlockManager(std::int64_t num_pages, int page_size);
  std::int64_t pages_for(std::int64_t tokens) const { return (tokens + page_size_ - 1) / page_size_; }
  // Pages appending `tokens` to s would take.
  std::int64_t new_pages(const Sequence& s, std::int64_t tokens) const;
  // Appends `tokens` to s, taking pages from the free list (checked before).
  void grow(Sequence& s, std::int64_t tokens);
  void drop_page(std::int32_t page);
  Status append_row(SeqId seq, TablePart part, PageTable* table) const;
  Status unknown(SeqId seq) const;
  Status check_tokens(std::string_view name, std::int64_t tokens) const;
  Status out_of_pages(const std::string& what, std::int64_t needed) const;

  int page_size_ = 1;
  std::vector<std::int32_t> refcount_;  // per page
  std::vector<std::int32_t> free_;      // free page ids; the back is handed out next
  std::unordered_map<SeqId, Sequence> seqs_;
  SeqId next_id_ = 0;
};

}  // namespace kvserve
