// BlockManager: page accounting, prefix sharing, truncation, exhaustion, page
// tables, and random operation sequences checked against a simple model.
#include "kvserve/block_manager.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <tuple>

#include "harness/harness.hpp"

namespace kvserve::test {
namespace {

// Everything a manager shows about the given sequences and every page, to
// prove that a refused call changed nothing.
using Snapshot = std::tuple<std::int64_t, std::int64_t, std::vector<std::int32_t>,
                            std::vector<std::tuple<std::int64_t, std::int64_t, std::vector<std::int32_t>>>>;
Snapshot snapshot(const BlockManager& bm, const std::vector<SeqId>& ids) {
  std::vector<std::int32_t> refs;
  for (std::int64_t p = 0; p < bm.num_pages(); ++p) refs.push_back(*bm.refcount(p));
  std::vector<std::tuple<std::int64_t, std::int64_t, std::vector<std::int32_t>>> seqs;
  for (SeqId id : ids) {
    const SequenceInfo s = *bm.sequence(id);
    seqs.emplace_back(s.length, s.prefix_pages, std::vector<std::int32_t>(s.pages.begin(), s.pages.end()));
  }
  return {bm.free_pages(), bm.num_sequences(), refs, seqs};
}

BlockManager make(std::int64_t num_pages, int page_size) {
  auto bm = BlockManager::create(num_pages, page_size);
  EXPECT_TRUE(bm) << bm.status().to_string();
  return std::move(*bm);
}

SeqId add(BlockManager& bm, std::int64_t tokens) {
  auto id = bm.add_sequence(tokens);
  EXPECT_TRUE(id) << id.status().to_string();
  return id ? *id : -1;
}

std::vector<std::int32_t> pages_of(const BlockManager& bm, SeqId id) {
  const SequenceInfo s = *bm.sequence(id);
  return {s.pages.begin(), s.pages.end()};
}

void expect_error(const Status& s, StatusCode code, const std::string& names) {
  EXPECT_EQ(s.code(), code) << s.to_string();
  EXPECT_NE(s.message().find(names), std::string::npos) << "message should name '" << names << "': " << s.message();
}

TEST(BlockManagerTest, CreateRejectsBadSizes) {
  expect_error(BlockManager::create(0, 16).status(), StatusCode::invalid_argument, "num_pages");
  expect_error(BlockManager::create(std::int64_t{1} << 31, 16).status(), StatusCode::invalid_argument, "num_pages");
  expect_error(BlockManager::create(8, 0).status(), StatusCode::invalid_argument, "page_size");
  BlockManager bm = make(8, 16);
  EXPECT_EQ(bm.free_pages(), 8);
  EXPECT_EQ(bm.page_size(), 16);
}

TEST(BlockManagerTest, AppendReservesPagesAndBuildsTables) {
  BlockManager bm = make(10, 4);
  const SeqId a = add(bm, 0);
  EXPECT_TRUE(pages_of(bm, a).empty());
  ASSERT_TRUE(bm.append_tokens(a));
  EXPECT_EQ(pages_of(bm, a).size(), 1u);
  ASSERT_TRUE(bm.append_tokens(a, 3));  // fills the page exactly
  EXPECT_EQ(pages_of(bm, a).size(), 1u);
  EXPECT_EQ(*bm.pages_needed(a, 1), 1);
  ASSERT_TRUE(bm.append_tokens(a));  // the last page is full: a new one
  EXPECT_EQ(bm.sequence(a)->length, 5);
  const SeqId b = add(bm, 9);
  const SeqId empty = add(bm, 0);
  EXPECT_EQ(bm.free_pages(), 10 - 2 - 3);

  auto t = bm.page_table(std::vector{a, b, empty, a});
  ASSERT_TRUE(t) << t.status().to_string();
  EXPECT_EQ(t->indptr, (std::vector<std::int32_t>{0, 2, 5, 5, 7}));
  EXPECT_EQ(t->last_page_len, (std::vector<std::int32_t>{1, 1, 0, 1}));
  std::vector<std::int32_t> expected = pages_of(bm, a), pb = pages_of(bm, b);
  expected.insert(expected.end(), pb.begin(), pb.end());
  expected.insert(expected.end(), expected.begin(), expected.begin() + 2);
  EXPECT_EQ(t->indices, expected);
  EXPECT_EQ(t->batch(), 4);
  expect_error(bm.page_table(std::vector<SeqId>{a, 99}).status(), StatusCode::invalid_argument, "seq");
}

TEST(BlockManagerTest, ForkSharesOnlyFullPages) {
  BlockManager bm = make(16, 4);
  const SeqId parent = add(bm, 10);  // pages p0 p1 full, p2 holds 2 tokens
  const std::vector<std::int32_t> pp = pages_of(bm, parent);
  const SeqId child = *bm.fork(parent);
  EXPECT_EQ(bm.sequence(child)->length, 8);
  EXPECT_EQ(bm.sequence(child)->prefix_pages, 2);
  EXPECT_EQ(pages_of(bm, child), (std::vector<std::int32_t>{pp[0], pp[1]}));
  EXPECT_EQ(*bm.refcount(pp[0]), 2);
  EXPECT_EQ(*bm.refcount(pp[2]), 1);
  const SeqId short_child = *bm.fork(parent, 5);
  EXPECT_EQ(bm.sequence(short_child)->length, 4);
  EXPECT_EQ(*bm.refcount(pp[0]), 3);
  EXPECT_EQ(*bm.refcount(pp[1]), 2);
  expect_error(bm.fork(parent, 11).status(), StatusCode::invalid_argument, "tokens");
  expect_error(bm.fork(12345).status(), StatusCode::invalid_argument, "seq");
  EXPECT_EQ(bm.free_pages(), 16 - 3);  // forks take no page

  // The child's next token goes to a page of its own, never into pp[2].
  ASSERT_TRUE(bm.append_tokens(child));
  const std::vector<std::int32_t> pc = pages_of(bm, child);
  ASSERT_EQ(pc.size(), 3u);
  EXPECT_NE(pc[2], pp[2]);
  EXPECT_EQ(*bm.refcount(pc[2]), 1);
  // The parent keeps writing its own partly filled page.
  ASSERT_TRUE(bm.append_tokens(parent, 2));
  EXPECT_EQ(pages_of(bm, parent), pp);

  auto prefix = bm.page_table(std::vector{child}, TablePart::prefix);
  auto suffix = bm.page_table(std::vector{child, parent}, TablePart::suffix);
  ASSERT_TRUE(prefix && suffix);
  EXPECT_EQ(prefix->indices, (std::vector<std::int32_t>{pp[0], pp[1]}));
  EXPECT_EQ(prefix->last_page_len, (std::vector<std::int32_t>{4}));
  EXPECT_EQ(suffix->indptr, (std::vector<std::int32_t>{0, 1, 4}));  // the parent was not forked: all its own
  EXPECT_EQ(suffix->indices, (std::vector<std::int32_t>{pc[2], pp[0], pp[1], pp[2]}));
  EXPECT_EQ(suffix->last_page_len, (std::vector<std::int32_t>{1, 4}));
}

TEST(BlockManagerTest, ReleaseReturnsPagesWithTheLastReference) {
  BlockManager bm = make(8, 4);
  const SeqId parent = add(bm, 10);
  const std::vector<std::int32_t> pp = pages_of(bm, parent);
  const SeqId child = *bm.fork(parent);
  ASSERT_TRUE(bm.release(parent));
  EXPECT_EQ(bm.free_pages(), 8 - 2);  // only the unshared page came back
  EXPECT_EQ(*bm.refcount(pp[0]), 1);
  EXPECT_EQ(*bm.refcount(pp[2]), 0);
  expect_error(bm.release(parent), StatusCode::invalid_argument, "seq");
  expect_error(bm.sequence(parent).status(), StatusCode::invalid_argument, "seq");
  ASSERT_TRUE(bm.release(child));
  EXPECT_EQ(bm.free_pages(), 8);
  EXPECT_EQ(bm.num_sequences(), 0);
  for (std::int64_t p = 0; p < 8; ++p) EXPECT_EQ(*bm.refcount(p), 0);
  expect_error(bm.refcount(8).status(), StatusCode::invalid_argument, "page");
  // Ids are never reused, so a stale handle cannot reach a new sequence.
  const SeqId fresh = add(bm, 1);
  EXPECT_NE(fresh, parent);
  EXPECT_NE(fresh, child);
}

TEST(BlockManagerTest, PagesAreReusedAfterRelease) {
  BlockManager bm = make(6, 2);
  const SeqId a = add(bm, 4), b = add(bm, 8);
  EXPECT_EQ(bm.free_pages(), 0);
  const std::vector<std::int32_t> pa = pages_of(bm, a);
  ASSERT_TRUE(bm.release(a));
  const SeqId c = add(bm, 3);
  std::vector<std::int32_t> pc = pages_of(bm, c), sorted_pa = pa;
  std::sort(pc.begin(), pc.end());
  std::sort(sorted_pa.begin(), sorted_pa.end());
  EXPECT_EQ(pc, sorted_pa);
  EXPECT_EQ(bm.free_pages(), 0);
  EXPECT_TRUE(bm.sequence(b));
}

TEST(BlockManagerTest, ExhaustionIsAStatusAndChangesNothing) {
  BlockManager bm = make(4, 2);
  const SeqId a = add(bm, 3), b = add(bm, 2);  // 2 + 1 pages, 1 free
  const std::vector<SeqId> ids{a, b};
  const Snapshot before = snapshot(bm, ids);

  Status s = bm.append_tokens(ids, 2);  // each needs one more page: 2 > 1
  expect_error(s, StatusCode::resource_exhausted, "out of pages");
  EXPECT_NE(s.message().find("needs 2 more pages, 1 of 4 are free"), std::string::npos) << s.message();
  EXPECT_EQ(snapshot(bm, ids), before);
  expect_error(bm.add_sequence(3).status(), StatusCode::resource_exhausted, "out of pages");
  EXPECT_EQ(snapshot(bm, ids), before);
  expect_error(bm.append_tokens(b, 5), StatusCode::resource_exhausted, "out of pages");
  EXPECT_EQ(snapshot(bm, ids), before);
  expect_error(bm.append_tokens(b, std::int64_t{1} << 62), StatusCode::invalid_argument, "tokens");
  EXPECT_EQ(snapshot(bm, ids), before);

  ASSERT_TRUE(bm.append_tokens(a));  // fills a's last page: no new page needed
  ASSERT_TRUE(bm.append_tokens(b, 2));  // takes the last page
  EXPECT_EQ(bm.free_pages(), 0);
  ASSERT_TRUE(bm.append_tokens(std::vector<SeqId>{}, 1));  // an empty step is fine
}

TEST(BlockManagerTest, BatchAppendIsAllOrNothing) {
  BlockManager bm = make(8, 4);
  const SeqId a = add(bm, 4), b = add(bm, 1);
  const std::vector<SeqId> ids{a, b};
  const Snapshot before = snapshot(bm, ids);
  expect_error(bm.append_tokens(std::vector<SeqId>{a, b, a}, 1), StatusCode::invalid_argument, "seqs");
  EXPECT_EQ(snapshot(bm, ids), before);
  expect_error(bm.append_tokens(std::vector<SeqId>{a, 777}, 1), StatusCode::invalid_argument, "seq");
  EXPECT_EQ(snapshot(bm, ids), before);
  expect_error(bm.append_tokens(ids, -1), StatusCode::invalid_argument, "tokens");
  EXPECT_EQ(snapshot(bm, ids), before);
  ASSERT_TRUE(bm.append_tokens(ids, 1));
  EXPECT_EQ(bm.sequence(a)->length, 5);
  EXPECT_EQ(bm.sequence(b)->length, 2);
}

TEST(BlockManagerTest, TruncateReleasesPagesAndProtectsSharedPages) {
  BlockManager bm = make(8, 4);
  const SeqId parent = add(bm, 8);
  const std::vector<std::int32_t> pp = pages_of(bm, parent);
  const SeqId child = *bm.fork(parent);
  const std::vector<SeqId> ids{parent, child};
  const Snapshot before = snapshot(bm, ids);
  // Cutting inside the shared page pp[1] would let the parent's next token
  // overwrite the child's.
  expect_error(bm.truncate(parent, 6), StatusCode::invalid_argument, "length");
  EXPECT_EQ(snapshot(bm, ids), before);
  expect_error(bm.truncate(parent, 9), StatusCode::invalid_argument, "length");
  EXPECT_EQ(snapshot(bm, ids), before);

  ASSERT_TRUE(bm.truncate(parent, 4));  // at a page boundary: fine
  EXPECT_EQ(*bm.refcount(pp[1]), 1);
  ASSERT_TRUE(bm.truncate(child, 6));  // pp[1] is the child's alone now
  EXPECT_EQ(bm.sequence(child)->prefix_pages, 1);  // a cut-open page is no longer prefix
  ASSERT_TRUE(bm.append_tokens(child));
  EXPECT_EQ(pages_of(bm, child), pp);
  ASSERT_TRUE(bm.truncate(child, 0));
  EXPECT_EQ(*bm.refcount(pp[1]), 0);
  EXPECT_EQ(bm.free_pages(), 8 - 1);
}

TEST(BlockManagerTest, CascadeTablesGroupRequestsBySharedPrefix) {
  const int ps = 4;
  BlockManager bm = make(32, ps);
  const SeqId sys = add(bm, 2 * ps + 1);
  const std::vector<std::int32_t> prompt = pages_of(bm, sys);
  const SeqId r1 = *bm.fork(sys), r2 = *bm.fork(sys), alone = add(bm, 5);
  ASSERT_TRUE(bm.append_tokens(r1, 3));
  const std::vector<std::vector<SeqId>> groups{{r1, r2}, {alone}, {}};
  auto t = bm.cascade_tables(groups);
  ASSERT_TRUE(t) << t.status().to_string();
  EXPECT_EQ(t->group_indptr, (std::vector<std::int32_t>{0, 2, 3, 3}));
  EXPECT_EQ(t->prefix.indptr, (std::vector<std::int32_t>{0, 2, 2, 2}));
  EXPECT_EQ(t->prefix.indices, (std::vector<std::int32_t>{prompt[0], prompt[1]}));
  EXPECT_EQ(t->prefix.last_page_len, (std::vector<std::int32_t>{ps, 0, 0}));
  EXPECT_EQ(t->suffix.indptr, (std::vector<std::int32_t>{0, 1, 1, 3}));
  EXPECT_EQ(t->suffix.last_page_len, (std::vector<std::int32_t>{3, 0, 1}));
  const CascadeLengths l = t->lengths();
  EXPECT_EQ(l.group_indptr.size(), 4u);
  EXPECT_EQ(l.suffix.last_page_len.size(), 3u);

  const std::vector<std::vector<SeqId>> mixed{{r1, alone}};
  expect_error(bm.cascade_tables(mixed).status(), StatusCode::invalid_argument, "groups");
}

// ------------------------------------------------------------ random model --

// The model: each sequence's token values and its pages as abstract ids
// (fresh for every allocation, copied by fork). A simulated pool holds the
// token written to each real slot, the way a serving loop writes K/V.
struct Model {
  struct Seq {
    std::vector<std::int64_t> tokens;
    std::vector<std::int64_t> pages;  // abstract ids
    std::int64_t prefix_pages = 0;
  };
  int page_size = 1;
  std::int64_t num_pages = 0;
  std::map<SeqId, Seq> seqs;
  std::int64_t next_page = 0, next_token = 0;

  std::map<std::int64_t, int> refs() const {
    std::map<std::int64_t, int> r;
    for (const auto& [id, s] : seqs)
      for (std::int64_t p : s.pages) ++r[p];
    return r;
  }
  std::int64_t free_pages() const { return num_pages - static_cast<std::int64_t>(refs().size()); }
  std::int64_t pages_for(std::int64_t tokens) const { return (tokens + page_size - 1) / page_size; }
  std::int64_t needed(SeqId id, std::int64_t tokens) const {
    const Seq& s = seqs.at(id);
    return pages_for(static_cast<std::int64_t>(s.tokens.size()) + tokens) - static_cast<std::int64_t>(s.pages.size());
  }
  void grow(SeqId id, std::int64_t tokens) {
    Seq& s = seqs.at(id);
    for (std::int64_t i = 0; i < tokens; ++i) s.tokens.push_back(next_token++);
    while (static_cast<std::int64_t>(s.pages.size()) < pages_for(static_cast<std::int64_t>(s.tokens.size())))
      s.pages.push_back(next_page++);
  }
};

// Writes the model's tokens [from, to) of `id` into the simulated pool at the
// slots the manager assigned.
void write_tokens(const BlockManager& bm, const Model& m, SeqId id, std::int64_t from, std::vector<std::int64_t>* pool) {
  const SequenceInfo s = *bm.sequence(id);
  const std::vector<std::int64_t>& tokens = m.seqs.at(id).tokens;
  for (std::int64_t pos = from; pos < static_cast<std::int64_t>(tokens.size()); ++pos)
    (*pool)[s.pages[pos / m.page_size] * m.page_size + pos % m.page_size] = tokens[pos];
}

void check_against_model(const BlockManager& bm, const Model& m, const std::vector<std::int64_t>& pool) {
  ASSERT_EQ(bm.num_sequences(), static_cast<std::int64_t>(m.seqs.size()));
  ASSERT_EQ(bm.free_pages(), m.free_pages());
  std::map<std::int64_t, std::int32_t> to_real;
  std::map<std::int32_t, std::int64_t> to_abstract;
  std::vector<SeqId> ids;
  for (const auto& [id, s] : m.seqs) {
    ids.push_back(id);
    const SequenceInfo info = *bm.sequence(id);
    ASSERT_EQ(info.length, static_cast<std::int64_t>(s.tokens.size())) << "seq " << id;
    ASSERT_EQ(info.prefix_pages, s.prefix_pages) << "seq " << id;
    ASSERT_EQ(info.pages.size(), s.pages.size()) << "seq " << id;
    for (std::size_t i = 0; i < s.pages.size(); ++i) {
      // The same sharing as the model: one real page per abstract page and back.
      auto [a, new_a] = to_real.emplace(s.pages[i], info.pages[i]);
      auto [r, new_r] = to_abstract.emplace(info.pages[i], s.pages[i]);
      ASSERT_EQ(a->second, info.pages[i]) << "seq " << id << " page " << i;
      ASSERT_EQ(r->second, s.pages[i]) << "real page " << info.pages[i] << " owned twice";
    }
    for (std::size_t pos = 0; pos < s.tokens.size(); ++pos)
      ASSERT_EQ(pool[info.pages[pos / m.page_size] * m.page_size + pos % m.page_size], s.tokens[pos])
          << "seq " << id << " token " << pos << " was overwritten";
  }
  const std::map<std::int64_t, int> refs = m.refs();
  for (std::int64_t p = 0; p < m.num_pages; ++p) {
    auto it = to_abstract.find(static_cast<std::int32_t>(p));
    ASSERT_EQ(*bm.refcount(p), it == to_abstract.end() ? 0 : refs.at(it->second)) << "page " << p;
  }
  auto t = bm.page_table(ids);
  ASSERT_TRUE(t);
  for (std::size_t b = 0; b < ids.size(); ++b) {
    const std::int64_t pages = t->indptr[b + 1] - t->indptr[b];
    const std::int64_t len = pages == 0 ? 0 : (pages - 1) * m.page_size + t->last_page_len[b];
    ASSERT_EQ(len, static_cast<std::int64_t>(m.seqs.at(ids[b]).tokens.size()));
  }
}

void run_random_operations(std::mt19937_64& rng, int page_size, std::int64_t num_pages, int steps) {
  SCOPED_TRACE("page_size=" + std::to_string(page_size) + " num_pages=" + std::to_string(num_pages));
  BlockManager bm = make(num_pages, page_size);
  Model m{.page_size = page_size, .num_pages = num_pages};
  std::vector<std::int64_t> pool(static_cast<std::size_t>(num_pages * page_size), -1);
  std::vector<SeqId> released;
  auto pick = [&](std::int64_t n) { return std::uniform_int_distribution<std::int64_t>(0, n - 1)(rng); };
  auto live = [&] {
    auto it = m.seqs.begin();
    std::advance(it, pick(static_cast<std::int64_t>(m.seqs.size())));
    return it->first;
  };
  int refused = 0;
  for (int step = 0; step < steps; ++step) {
    std::vector<SeqId> ids;
    for (const auto& [id, s] : m.seqs) ids.push_back(id);
    const Snapshot before = snapshot(bm, ids);
    const std::int64_t op = m.seqs.empty() ? 0 : pick(7);
    bool ok = true;
    if (op == 0) {  // add
      const std::int64_t tokens = pick(3 * page_size + 1);
      auto id = bm.add_sequence(tokens);
      ok = m.pages_for(tokens) <= m.free_pages();
      ASSERT_EQ(bool(id), ok) << id.status().to_string();
      if (ok) {
        m.seqs[*id] = {};
        m.grow(*id, tokens);
        write_tokens(bm, m, *id, 0, &pool);
      } else {
        ASSERT_EQ(id.status().code(), StatusCode::resource_exhausted);
      }
    } else if (op == 1) {  // fork
      const SeqId parent = live();
      const Model::Seq& p = m.seqs.at(parent);
      const std::int64_t tokens = pick(static_cast<std::int64_t>(p.tokens.size()) + 1);
      auto id = bm.fork(parent, tokens);
      ASSERT_TRUE(id) << id.status().to_string();
      const std::int64_t shared = tokens / page_size;
      m.seqs[*id] = {{p.tokens.begin(), p.tokens.begin() + shared * page_size},
                     {p.pages.begin(), p.pages.begin() + shared}, shared};
    } else if (op <= 3) {  // append to one
      const SeqId id = live();
      const std::int64_t tokens = pick(2 * page_size + 1), from = static_cast<std::int64_t>(m.seqs.at(id).tokens.size());
      const Status s = bm.append_tokens(id, tokens);
      ok = m.needed(id, tokens) <= m.free_pages();
      ASSERT_EQ(s.is_ok(), ok) << s.to_string();
      if (ok) {
        m.grow(id, tokens);
        write_tokens(bm, m, id, from, &pool);
      } else {
        ASSERT_EQ(s.code(), StatusCode::resource_exhausted);
      }
    } else if (op == 4) {  // a decode step: one token for a random subset
      std::vector<SeqId> batch;
      for (SeqId id : ids)
        if (pick(2)) batch.push_back(id);
      std::int64_t need = 0;
      for (SeqId id : batch) need += m.needed(id, 1);
      const Status s = bm.append_tokens(batch, 1);
      ok = need <= m.free_pages();
      ASSERT_EQ(s.is_ok(), ok) << s.to_string();
      for (SeqId id : batch) {
        if (!ok) break;
        const std::int64_t from = static_cast<std::int64_t>(m.seqs.at(id).tokens.size());
        m.grow(id, 1);
        write_tokens(bm, m, id, from, &pool);
      }
    } else if (op == 5) {  // truncate
      const SeqId id = live();
      Model::Seq& s = m.seqs.at(id);
      const std::int64_t len = pick(static_cast<std::int64_t>(s.tokens.size()) + 1);
      const Status st = bm.truncate(id, len);
      ok = len % page_size == 0 || m.refs().at(s.pages[len / page_size]) == 1;
      ASSERT_EQ(st.is_ok(), ok) << st.to_string();
      if (ok) {
        s.tokens.resize(len);
        s.pages.resize(m.pages_for(len));
        s.prefix_pages = std::min(s.prefix_pages, len / page_size);
      }
    } else {  // release, and sometimes reuse a stale id
      const SeqId id = live();
      ASSERT_TRUE(bm.release(id));
      m.seqs.erase(id);
      released.push_back(id);
      ASSERT_EQ(bm.append_tokens(released[pick(static_cast<std::int64_t>(released.size()))]).code(),
                StatusCode::invalid_argument);
    }
    if (!ok) {
      ++refused;
      ASSERT_EQ(snapshot(bm, ids), before) << "a refused operation changed the manager (step " << step << ")";
    }
    check_against_model(bm, m, pool);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(refused, 0) << "the random run never hit exhaustion or a refused truncate";
}

TEST(BlockManagerTest, RandomOperationsMatchAModel) {
  auto rng = make_rng();
  for (int page_size : {1, 3, 4, 16}) {
    run_random_operations(rng, page_size, 24, 3000);
    if (HasFatalFailure()) return;
  }
}

TEST(BlockManagerTest, PageTableRejectsAnUnknownPart) {
  auto bm = BlockManager::create(8, 4);
  ASSERT_TRUE(bm);
  auto seq = bm->add_sequence(5);
  ASSERT_TRUE(seq);
  const std::vector<SeqId> seqs{*seq};
  auto t = bm->page_table(seqs, static_cast<TablePart>(7));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(t.status().message().find("'part'"), std::string::npos) << t.status().message();
}

}  // namespace
}  // namespace kvserve::test
