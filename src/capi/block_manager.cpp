// C ABI of the BlockManager: the host-side page allocator behind an opaque
// handle, its page tables copied into caller-owned buffers.
#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "capi/capi.hpp"
#include "kvserve/block_manager.hpp"

using namespace kvserve;

static_assert(std::is_same_v<kvs_seq_id, SeqId>);
static_assert(KVS_TABLE_ALL == static_cast<int>(TablePart::all) &&
              KVS_TABLE_PREFIX == static_cast<int>(TablePart::prefix) &&
              KVS_TABLE_SUFFIX == static_cast<int>(TablePart::suffix));

struct kvs_block_manager {
  BlockManager manager;
};

namespace {

Status check_manager(const kvs_block_manager* m) { return capi::non_null(m, "manager"); }

// A Result's value into the caller's out parameter.
template <class T>
Status store(const Result<T>& value, T* out) {
  if (!value) return value.status();
  *out = *value;
  return Status::ok();
}

// BlockManager reads any other value as TablePart::all, so the C ABI refuses it.
// `part` is read as its bytes (capi::to_enum says why).
Status to_part(const kvs_table_part& part, TablePart* out) {
  std::underlying_type_t<kvs_table_part> raw;
  std::memcpy(&raw, &part, sizeof raw);
  if (raw != KVS_TABLE_ALL && raw != KVS_TABLE_PREFIX && raw != KVS_TABLE_SUFFIX)
    return Status::invalid_argument("C ABI: argument 'part': expected KVS_TABLE_ALL, KVS_TABLE_PREFIX or "
                                    "KVS_TABLE_SUFFIX, got " + std::to_string(static_cast<long long>(raw)));
  *out = capi::to_enum<TablePart>(part);
  return Status::ok();
}

// The caller's buffers for table `t` (kvs_page_table in kvserve.h), checked
// before anything is written: none for a size query (indptr NULL).
Status check_buffers(const PageTable& t, const kvs_page_table& out, const std::string& name) {
  if (out.indptr == nullptr) return Status::ok();
  const auto needed = static_cast<std::int64_t>(t.indices.size());
  if ((out.indices == nullptr && needed > 0) || out.indices_capacity < needed)
    return Status::invalid_argument("C ABI: argument '" + name + ".indices': expected room for " +
                                    std::to_string(needed) + " entries, got " +
                                    (out.indices ? "capacity " + std::to_string(out.indices_capacity) : "NULL"));
  if (out.last_page_len == nullptr && t.batch() > 0) return capi::non_null(nullptr, (name + ".last_page_len").c_str());
  return Status::ok();
}

// Sets num_indices and, unless this is a size query, copies the table.
void write(const PageTable& t, kvs_page_table* out) {
  out->num_indices = static_cast<std::int64_t>(t.indices.size());
  if (out->indptr == nullptr) return;
  std::ranges::copy(t.indptr, out->indptr);
  std::ranges::copy(t.indices, out->indices);
  std::ranges::copy(t.last_page_len, out->last_page_len);
}

// Groups given as consecutive runs of `members`, group_sizes [num_groups] long.
Status to_groups(const kvs_seq_id* members, const int64_t* group_sizes, int64_t num_groups,
                 std::vector<std::vector<SeqId>>* groups) {
  KVSERVE_TRY(capi::check_count(num_groups, "num_groups"));
  std::span<const std::int64_t> sizes;
  KVSERVE_TRY(capi::to_span(group_sizes, num_groups, "group_sizes", &sizes));
  std::int64_t total = 0;
  for (std::size_t g = 0; g < sizes.size(); ++g) {
    KVSERVE_TRY(capi::check_count(sizes[g], ("group_sizes[" + std::to_string(g) + "]").c_str()));
    total += sizes[g];
  }
  std::span<const SeqId> all;
  KVSERVE_TRY(capi::to_span(members, total, "members", &all));
  groups->reserve(sizes.size());
  for (std::int64_t size : sizes) {
    groups->emplace_back(all.begin(), all.begin() + size);
    all = all.subspan(static_cast<std::size_t>(size));
  }
  return Status::ok();
}

}  // namespace

extern "C" {

kvs_status_code kvs_block_manager_create(int64_t num_pages, int32_t page_size, kvs_block_manager** manager,
                                         kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(capi::non_null(manager, "manager"));
    *manager = nullptr;
    auto m = BlockManager::create(num_pages, page_size);
    if (!m) return m.status();
    *manager = new kvs_block_manager{std::move(*m)};
    return Status::ok();
  });
}

void kvs_block_manager_destroy(kvs_block_manager* manager) { delete manager; }

int64_t kvs_block_manager_free_pages(const kvs_block_manager* manager) {
  return manager ? manager->manager.free_pages() : 0;
}

int64_t kvs_block_manager_num_pages(const kvs_block_manager* manager) {
  return manager ? manager->manager.num_pages() : 0;
}

int32_t kvs_block_manager_page_size(const kvs_block_manager* manager) {
  return manager ? manager->manager.page_size() : 0;
}

int64_t kvs_block_manager_num_sequences(const kvs_block_manager* manager) {
  return manager ? manager->manager.num_sequences() : 0;
}

kvs_status_code kvs_block_manager_refcount(const kvs_block_manager* manager, int64_t page, int32_t* refcount,
                                           kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    KVSERVE_TRY(capi::non_null(refcount, "refcount"));
    return store(manager->manager.refcount(page), refcount);
  });
}

kvs_status_code kvs_block_manager_pages_needed(const kvs_block_manager* manager, kvs_seq_id seq, int64_t tokens,
                                               int64_t* pages, kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    KVSERVE_TRY(capi::non_null(pages, "pages"));
    return store(manager->manager.pages_needed(seq, tokens), pages);
  });
}

kvs_status_code kvs_block_manager_sequence(const kvs_block_manager* manager, kvs_seq_id seq, kvs_sequence_info* info,
                                           kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    KVSERVE_TRY(capi::non_null(info, "info"));
    auto s = manager->manager.sequence(seq);
    if (!s) return s.status();
    *info = kvs_sequence_info{.length = s->length, .prefix_pages = s->prefix_pages,
                              .num_pages = static_cast<std::int64_t>(s->pages.size())};
    return Status::ok();
  });
}

kvs_status_code kvs_block_manager_add_sequence(kvs_block_manager* manager, int64_t tokens, kvs_seq_id* seq,
                                               kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    KVSERVE_TRY(capi::non_null(seq, "seq"));
    return store(manager->manager.add_sequence(tokens), seq);
  });
}

kvs_status_code kvs_block_manager_fork(kvs_block_manager* manager, kvs_seq_id parent, int64_t tokens,
                                       kvs_seq_id* child, kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    KVSERVE_TRY(capi::non_null(child, "child"));
    BlockManager& m = manager->manager;
    return store(tokens == -1 ? m.fork(parent) : m.fork(parent, tokens), child);
  });
}

kvs_status_code kvs_block_manager_append_tokens(kvs_block_manager* manager, kvs_seq_id seq, int64_t tokens,
                                                kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    return manager->manager.append_tokens(seq, tokens);
  });
}

kvs_status_code kvs_block_manager_append_tokens_batch(kvs_block_manager* manager, const kvs_seq_id* seqs,
                                                      int64_t num_seqs, int64_t tokens, kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    KVSERVE_TRY(capi::check_count(num_seqs, "num_seqs"));
    std::span<const SeqId> ids;
    KVSERVE_TRY(capi::to_span(seqs, num_seqs, "seqs", &ids));
    return manager->manager.append_tokens(ids, tokens);
  });
}

kvs_status_code kvs_block_manager_truncate(kvs_block_manager* manager, kvs_seq_id seq, int64_t length,
                                           kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    return manager->manager.truncate(seq, length);
  });
}

kvs_status_code kvs_block_manager_release(kvs_block_manager* manager, kvs_seq_id seq, kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    return manager->manager.release(seq);
  });
}

kvs_status_code kvs_block_manager_page_table(const kvs_block_manager* manager, const kvs_seq_id* seqs,
                                             int64_t num_seqs, kvs_table_part part, kvs_page_table* table,
                                             kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    KVSERVE_TRY(capi::non_null(table, "table"));
    KVSERVE_TRY(capi::check_count(num_seqs, "num_seqs"));
    std::span<const SeqId> ids;
    KVSERVE_TRY(capi::to_span(seqs, num_seqs, "seqs", &ids));
    TablePart which{};
    KVSERVE_TRY(to_part(part, &which));
    auto t = manager->manager.page_table(ids, which);
    if (!t) return t.status();
    KVSERVE_TRY(check_buffers(*t, *table, "table"));
    write(*t, table);
    return Status::ok();
  });
}

kvs_status_code kvs_block_manager_cascade_tables(const kvs_block_manager* manager, const kvs_seq_id* members,
                                                 const int64_t* group_sizes, int64_t num_groups,
                                                 int32_t* group_indptr, kvs_page_table* prefix,
                                                 kvs_page_table* suffix, kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_manager(manager));
    KVSERVE_TRY(capi::non_null(prefix, "prefix"));
    KVSERVE_TRY(capi::non_null(suffix, "suffix"));
    std::vector<std::vector<SeqId>> groups;
    KVSERVE_TRY(to_groups(members, group_sizes, num_groups, &groups));
    auto t = manager->manager.cascade_tables(groups);
    if (!t) return t.status();
    KVSERVE_TRY(check_buffers(t->prefix, *prefix, "prefix"));
    KVSERVE_TRY(check_buffers(t->suffix, *suffix, "suffix"));
    if (group_indptr != nullptr) std::ranges::copy(t->group_indptr, group_indptr);
    write(t->prefix, prefix);
    write(t->suffix, suffix);
    return Status::ok();
  });
}

}  // extern "C"
