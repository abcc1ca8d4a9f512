// C ABI of the attention ops.
#include "capi/capi.hpp"

using namespace kvserve;

struct kvs_batch_paged_decode_plan : capi::PlanHandle<BatchPagedDecode> {};
struct kvs_single_decode_plan : capi::PlanHandle<SingleDecode> {};
struct kvs_single_prefill_plan : capi::PlanHandle<SinglePrefill> {};
struct kvs_batch_ragged_prefill_plan : capi::PlanHandle<BatchRaggedPrefill> {};
struct kvs_batch_paged_prefill_plan : capi::PlanHandle<BatchPagedPrefill> {};
struct kvs_cascade_attention_plan : capi::PlanHandle<CascadeAttention> {};

// The C++ run arguments of each op (KVS_CAPI_PLAN_COMMON's run and can_implement).
namespace {

auto to_args(const kvs_batch_paged_decode_args& a) {
  return BatchPagedDecodeArgs{.q = capi::to_view(a.q), .kv = capi::to_paged(a.kv), .out = capi::to_view(a.out),
                              .lse = capi::to_view(a.lse)};
}

auto to_args(const kvs_single_decode_args& a) {
  return SingleDecodeArgs{.q = capi::to_view(a.q), .k = capi::to_view(a.k), .v = capi::to_view(a.v),
                          .kv_len = capi::to_view(a.kv_len), .out = capi::to_view(a.out),
                          .lse = capi::to_view(a.lse)};
}

auto to_args(const kvs_single_prefill_args& a) {
  return SinglePrefillArgs{.q = capi::to_view(a.q), .k = capi::to_view(a.k), .v = capi::to_view(a.v),
                           .out = capi::to_view(a.out), .lse = capi::to_view(a.lse)};
}

auto to_args(const kvs_batch_ragged_prefill_args& a) {
  return BatchRaggedPrefillArgs{.q = capi::to_view(a.q), .k = capi::to_view(a.k), .v = capi::to_view(a.v),
                                .qo_indptr = capi::to_view(a.qo_indptr), .kv_indptr = capi::to_view(a.kv_indptr),
                                .out = capi::to_view(a.out), .lse = capi::to_view(a.lse)};
}

auto to_args(const kvs_batch_paged_prefill_args& a) {
  return BatchPagedPrefillArgs{.q = capi::to_view(a.q), .qo_indptr = capi::to_view(a.qo_indptr),
                               .kv = capi::to_paged(a.kv), .out = capi::to_view(a.out),
                               .lse = capi::to_view(a.lse)};
}

auto to_args(const kvs_cascade_attention_args& a) {
  return CascadeAttentionArgs{.q = capi::to_view(a.q), .group_indptr = capi::to_view(a.group_indptr),
                              .prefix = capi::to_paged(a.prefix), .suffix = capi::to_paged(a.suffix),
                              .out = capi::to_view(a.out), .lse = capi::to_view(a.lse)};
}

}  // namespace

extern "C" {

kvs_status_code kvs_validate_page_table(const kvs_paged_kv_desc* desc, const kvs_paged_kv* kv, void* stream,
                                        kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(capi::non_null(desc, "desc"));
    KVSERVE_TRY(capi::non_null(kv, "kv"));
    return validate_page_table(capi::to_desc(*desc), capi::to_paged(*kv), Stream{stream});
  });
}

// ------------------------------------------------------- BatchPagedDecode --

kvs_status_code kvs_batch_paged_decode_create(const kvs_batch_paged_decode_desc* desc, kvs_device device,
                                              kvs_batch_paged_decode_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_batch_paged_decode_desc& d) {
    return BatchPagedDecodeDesc{.max_batch = d.max_batch, .num_qo_heads = d.num_qo_heads, .kv = capi::to_desc(d.kv),
                                .q_dtype = capi::to_dtype(d.q_dtype), .attn = capi::to_params(d.attn),
                                .kv_split_tokens = d.kv_split_tokens};
  });
}

kvs_status_code kvs_batch_paged_decode_prepare(kvs_batch_paged_decode_plan* plan, const int32_t* indptr,
                                               const int32_t* last_page_len, int64_t batch, void* workspace,
                                               size_t workspace_bytes, void* stream, kvs_error* err) {
  return capi::prepare_paged(plan, indptr, last_page_len, batch, workspace, workspace_bytes, stream, err);
}

// ----------------------------------------------------------- SingleDecode --

kvs_status_code kvs_single_decode_create(const kvs_single_decode_desc* desc, kvs_device device,
                                         kvs_single_decode_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_single_decode_desc& d) {
    return SingleDecodeDesc{.max_batch = d.max_batch, .num_qo_heads = d.num_qo_heads, .num_kv_heads = d.num_kv_heads,
                            .head_dim = d.head_dim, .dtype = capi::to_dtype(d.dtype), .attn = capi::to_params(d.attn),
                            .kv_split_tokens = d.kv_split_tokens};
  });
}

// ---------------------------------------------------------- SinglePrefill --

kvs_status_code kvs_single_prefill_create(const kvs_single_prefill_desc* desc, kvs_device device,
                                          kvs_single_prefill_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_single_prefill_desc& d) {
    return SinglePrefillDesc{.num_qo_heads = d.num_qo_heads, .num_kv_heads = d.num_kv_heads, .head_dim = d.head_dim,
                             .head_dim_v = d.head_dim_v, .dtype = capi::to_dtype(d.dtype),
                             .layout = capi::to_enum<KvLayout>(d.layout), .causal = capi::to_bool(d.causal),
                             .attn = capi::to_params(d.attn)};
  });
}

// ----------------------------------------------------- BatchRaggedPrefill --

kvs_status_code kvs_batch_ragged_prefill_create(const kvs_batch_ragged_prefill_desc* desc, kvs_device device,
                                                kvs_batch_ragged_prefill_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_batch_ragged_prefill_desc& d) {
    return BatchRaggedPrefillDesc{.max_batch = d.max_batch, .num_qo_heads = d.num_qo_heads,
                                  .num_kv_heads = d.num_kv_heads, .head_dim = d.head_dim, .head_dim_v = d.head_dim_v,
                                  .dtype = capi::to_dtype(d.dtype), .causal = capi::to_bool(d.causal),
                                  .attn = capi::to_params(d.attn)};
  });
}

kvs_status_code kvs_batch_ragged_prefill_prepare(kvs_batch_ragged_prefill_plan* plan, const int32_t* qo_indptr,
                                                 const int32_t* kv_indptr, int64_t batch, void* workspace,
                                                 size_t workspace_bytes, void* stream, kvs_error* err) {
  return capi::prepare(plan, workspace, workspace_bytes, stream, err, [&](RaggedLengths* host) -> Status {
    KVSERVE_TRY(capi::check_count(batch, "batch"));
    KVSERVE_TRY(capi::to_span(qo_indptr, batch + 1, "qo_indptr", &host->qo_indptr));
    return capi::to_span(kv_indptr, batch + 1, "kv_indptr", &host->kv_indptr);
  });
}

// ------------------------------------------------------ BatchPagedPrefill --

kvs_status_code kvs_batch_paged_prefill_create(const kvs_batch_paged_prefill_desc* desc, kvs_device device,
                                               kvs_batch_paged_prefill_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_batch_paged_prefill_desc& d) {
    return BatchPagedPrefillDesc{.max_batch = d.max_batch, .num_qo_heads = d.num_qo_heads, .kv = capi::to_desc(d.kv),
                                 .q_dtype = capi::to_dtype(d.q_dtype), .causal = capi::to_bool(d.causal),
                                 .attn = capi::to_params(d.attn)};
  });
}

kvs_status_code kvs_batch_paged_prefill_prepare(kvs_batch_paged_prefill_plan* plan, const int32_t* qo_indptr,
                                                const int32_t* kv_indptr, const int32_t* kv_last_page_len,
                                                int64_t batch, void* workspace, size_t workspace_bytes,
                                                void* stream, kvs_error* err) {
  return capi::prepare(plan, workspace, workspace_bytes, stream, err, [&](PagedPrefillLengths* host) -> Status {
    KVSERVE_TRY(capi::check_count(batch, "batch"));
    KVSERVE_TRY(capi::to_span(qo_indptr, batch + 1, "qo_indptr", &host->qo_indptr));
    return capi::to_lengths(kv_indptr, "kv_indptr", kv_last_page_len, "kv_last_page_len", batch, &host->kv);
  });
}

// ------------------------------------------------------- CascadeAttention --

kvs_status_code kvs_cascade_attention_create(const kvs_cascade_attention_desc* desc, kvs_device device,
                                             kvs_cascade_attention_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_cascade_attention_desc& d) {
    return CascadeAttentionDesc{.max_batch = d.max_batch, .max_groups = d.max_groups, .num_qo_heads = d.num_qo_heads,
                                .kv = capi::to_desc(d.kv), .q_dtype = capi::to_dtype(d.q_dtype),
                                .attn = capi::to_params(d.attn)};
  });
}

kvs_status_code kvs_cascade_attention_prepare(kvs_cascade_attention_plan* plan, const int32_t* group_indptr,
                                              int64_t num_groups, const int32_t* prefix_indptr,
                                              const int32_t* prefix_last_page_len, const int32_t* suffix_indptr,
                                              const int32_t* suffix_last_page_len, int64_t batch, void* workspace,
                                              size_t workspace_bytes, void* stream, kvs_error* err) {
  return capi::prepare(plan, workspace, workspace_bytes, stream, err, [&](CascadeLengths* host) -> Status {
    KVSERVE_TRY(capi::check_count(num_groups, "num_groups"));
    KVSERVE_TRY(capi::check_count(batch, "batch"));
    KVSERVE_TRY(capi::to_span(group_indptr, num_groups + 1, "group_indptr", &host->group_indptr));
    KVSERVE_TRY(capi::to_lengths(prefix_indptr, "prefix_indptr", prefix_last_page_len, "prefix_last_page_len",
                                 num_groups, &host->prefix));
    return capi::to_lengths(suffix_indptr, "suffix_indptr", suffix_last_page_len, "suffix_last_page_len", batch,
                            &host->suffix);
  });
}

}  // extern "C"

KVS_CAPI_PLAN_COMMON(batch_paged_decode)
KVS_CAPI_PLAN_COMMON(single_decode)
KVS_CAPI_PLAN_COMMON(single_prefill)
KVS_CAPI_PLAN_COMMON(batch_ragged_prefill)
KVS_CAPI_PLAN_COMMON(batch_paged_prefill)
KVS_CAPI_PLAN_COMMON(cascade_attention)
