// Checks shared by every op that reads or writes a paged KV cache.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kvserve/attention.hpp"
#include "kvserve/kv_cache.hpp"

namespace kvserve::detail {

// Descriptor fields of a paged cache; `field` prefixes the names ("kv").
Status check_paged_kv_desc(std::string_view op, std::string_view field, const PagedKvDesc& kv);
// Query/output dtype against the cache: equal, or f16/bf16 over an fp8 cache.
Status check_q_dtype(std::string_view op, std::string_view field, DType q_dtype, DType kv_dtype);
// The V / output head dim of a prefill descriptor (head_dim_v 0 means head_dim).
inline int value_head_dim(int head_dim, int head_dim_v) { return head_dim_v > 0 ? head_dim_v : head_dim; }
// Descriptor fields common to all attention ops.
Status check_attention_params(std::string_view op, std::string_view field, const AttentionParams& attn);
// "q=bf16 kv=fp8_e4m3 d=128 layout=NHD"
std::string paged_config(DType q_dtype, const PagedKvDesc& kv);

// The tensors of a PagedKv for `batch` rows (requests or groups); `name`
// prefixes the argument names ("kv" -> "kv.indptr"). On the CPU, where the
// page table is host memory, its contents are checked too.
Status check_paged_kv_args(std::string_view op, std::string_view name, const PagedKvDesc& desc, const PagedKv& kv,
                           std::int64_t batch, Device device);
// Host-side lengths handed to prepare(): indptr, last_page_len; returns B.
// `max_rows` is the descriptor's bound on the rows (max_batch, or max_groups
// for a cascade's prefixes), named `max_name` in messages.
Status check_paged_lengths(std::string_view op, std::string_view name, const PagedKvDesc& desc,
                           const PagedKvLengths& host, std::int64_t max_rows, std::int64_t* batch,
                           std::string_view max_name = "max_batch");
// The contents of a host page table: the first bad entry, named.
Status check_page_table_host(std::string_view op, std::string_view name, const PagedKvDesc& desc,
                             const std::int32_t* indptr, std::int64_t batch, const std::int32_t* indices,
                             std::int64_t num_indices, const std::int32_t* last_page_len);
// run()'s batch against the last prepare().
Status check_prepared_batch(std::string_view op, std::int64_t batch, std::int64_t prepared, std::int64_t max_batch);
// The same, naming `arg` as the argument the batch is read from.
Status check_prepared_batch(std::string_view op, std::string_view arg, std::int64_t batch, std::int64_t prepared,
                            std::int64_t max_batch);
// A decode descriptor's kv_split_tokens: 0 (auto) or a split length.
Status check_split_tokens(std::string_view op, int kv_split_tokens);
// The page-table checks of the paged KV ops read only the table's geometry:
// an MLA cache's page_size and num_pages as a PagedKvDesc.
PagedKvDesc page_geometry(const PagedMlaDesc& d);
// The paged MLA cache (PagedMlaAppend, BatchPagedMlaDecode): the descriptor's
// fields, prefixed by `field` ("" names them bare), and the cache's tensors for
// `batch` requests, `name` prefixing the argument names ("cache"); on the CPU
// the page table's contents too.
Status check_paged_mla_desc(std::string_view op, std::string_view field, const PagedMlaDesc& d);
Status check_paged_mla_cache(std::string_view op, std::string_view name, const PagedMlaDesc& d,
                             const PagedMlaCache& c, std::int64_t batch, Device device);
// Request b's KV length from a host page table (0 when it has no pages).
std::int64_t paged_kv_len(const std::int32_t* indptr, const std::int32_t* last_page_len, std::int64_t b,
                          int page_size);

}  // namespace kvserve::detail
