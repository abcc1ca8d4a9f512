#include "capi/capi.hpp"

#include <algorithm>

namespace kvserve::capi {

// The C enums carry the C++ values, so conversions are casts.
static_assert(KVS_F16 == static_cast<int>(DType::f16) && KVS_BF16 == static_cast<int>(DType::bf16) &&
              KVS_F32 == static_cast<int>(DType::f32) && KVS_FP8_E4M3 == static_cast<int>(DType::fp8_e4m3) &&
              KVS_FP8_E5M2 == static_cast<int>(DType::fp8_e5m2) && KVS_INT32 == static_cast<int>(DType::int32));
static_assert(KVS_MAX_BATCH == kMaxBatch && KVS_MAX_HEADS == kMaxHeads && KVS_MAX_HEAD_DIM == kMaxHeadDim &&
              KVS_MAX_ROW_WIDTH == kMaxRowWidth && KVS_MAX_PAGE_SIZE == kMaxPageSize && KVS_MAX_PAGES == kMaxPages &&
              KVS_MAX_TOKENS == kMaxTokens && KVS_MAX_SEQUENCE_LENGTH == kMaxSequenceLength &&
              KVS_MAX_VOCAB == kMaxVocab && KVS_MAX_DRAFT_TOKENS == kMaxDraftTokens && KVS_MAX_RANK == kMaxRank);
static_assert(KVS_NHD == static_cast<int>(KvLayout::NHD) && KVS_HND == static_cast<int>(KvLayout::HND));
static_assert(KVS_OK == static_cast<int>(StatusCode::ok) &&
              KVS_INVALID_ARGUMENT == static_cast<int>(StatusCode::invalid_argument) &&
              KVS_UNSUPPORTED == static_cast<int>(StatusCode::unsupported) &&
              KVS_WORKSPACE_TOO_SMALL == static_cast<int>(StatusCode::workspace_too_small) &&
              KVS_CUDA_ERROR == static_cast<int>(StatusCode::cuda_error) &&
              KVS_INTERNAL == static_cast<int>(StatusCode::internal) &&
              KVS_RESOURCE_EXHAUSTED == static_cast<int>(StatusCode::resource_exhausted));

// The kind is read as its raw integer (to_enum): a C caller may store any
// int there. An unknown kind stays unknown, and check_device / check_tensor
// refuse it naming the device or the argument (it used to become cpu).
Device to_device(const kvs_device& d) { return Device{to_enum<DeviceKind>(d.kind), d.ordinal}; }

DType to_dtype(const kvs_dtype& t) { return to_enum<DType>(t); }

TensorView to_view(const kvs_tensor& t) {
  TensorView v;
  v.data = t.data;
  v.dtype = to_dtype(t.dtype);
  // The rank passes through as given, so an op refuses a bad one naming the
  // argument; only the entries that exist are copied.
  v.rank = t.rank;
  for (int i = 0; i < std::clamp<int>(t.rank, 0, kMaxRank); ++i) {
    v.shape[i] = t.shape[i];
    v.strides[i] = t.strides[i];
  }
  v.device = to_device(t.device);
  return v;
}

AttentionParams to_params(const kvs_attention_params& p) {
  return AttentionParams{.sm_scale = positive_or_default(p.sm_scale), .logits_soft_cap = p.logits_soft_cap,
                         .window_left = p.window_left};
}

PagedKvDesc to_desc(const kvs_paged_kv_desc& d) {
  PagedKvDesc kv;
  kv.page_size = d.page_size;
  kv.num_pages = d.num_pages;
  kv.num_kv_heads = d.num_kv_heads;
  kv.head_dim = d.head_dim;
  kv.dtype = to_dtype(d.dtype);
  kv.layout = to_enum<KvLayout>(d.layout);
  if (d.k_scale != nullptr && d.num_k_scale > 0) kv.k_scale.assign(d.k_scale, d.k_scale + d.num_k_scale);
  if (d.v_scale != nullptr && d.num_v_scale > 0) kv.v_scale.assign(d.v_scale, d.v_scale + d.num_v_scale);
  return kv;
}

PagedKv to_paged(const kvs_paged_kv& kv) {
  return PagedKv{to_view(kv.k_pages), to_view(kv.v_pages), to_view(kv.indptr), to_view(kv.indices),
                 to_view(kv.last_page_len)};
}

PagedMlaDesc to_desc(const kvs_paged_mla_desc& d) {
  return PagedMlaDesc{.page_size = d.page_size, .num_pages = d.num_pages, .ckv_dim = d.ckv_dim, .kpe_dim = d.kpe_dim,
                      .dtype = to_dtype(d.dtype)};
}

PagedMlaCache to_mla_cache(const kvs_paged_mla_cache& c) {
  return PagedMlaCache{.ckv_pages = to_view(c.ckv_pages), .kpe_pages = to_view(c.kpe_pages),
                       .indptr = to_view(c.indptr), .indices = to_view(c.indices),
                       .last_page_len = to_view(c.last_page_len)};
}

Status check_count(std::int64_t count, const char* name) {
  if (count >= 0) return Status::ok();
  return Status::invalid_argument(std::string("C ABI: argument '") + name + "': expected >= 0, got " +
                                  std::to_string(count));
}

Status to_lengths(const std::int32_t* indptr, const char* indptr_name, const std::int32_t* last_page_len,
                  const char* last_name, std::int64_t rows, PagedKvLengths* out) {
  KVSERVE_TRY(to_span(indptr, rows + 1, indptr_name, &out->indptr));
  return to_span(last_page_len, rows, last_name, &out->last_page_len);
}

kvs_precision to_precision(const Precision& p) {
  return kvs_precision{.math = static_cast<kvs_dtype>(p.math), .accumulator = static_cast<kvs_dtype>(p.accumulator),
                       .deterministic = p.deterministic ? 1 : 0, .batch_invariant = p.batch_invariant ? 1 : 0};
}

kvs_status_code report(const Status& s, kvs_error* err) {
  const auto code = static_cast<kvs_status_code>(s.code());
  if (err != nullptr) {
    err->code = code;
    err->workspace_needed = s.needed();
    err->workspace_got = s.got();
    const std::string& m = s.message();
    const std::size_t n = std::min(m.size(), sizeof(err->message) - 1);
    std::memcpy(err->message, m.data(), n);
    err->message[n] = '\0';
  }
  return code;
}

}  // namespace kvserve::capi

extern "C" int32_t kvs_cuda_backend_built(void) { return kvserve::cuda_backend_built() ? 1 : 0; }
extern "C" int32_t kvs_cuda_device_count(void) { return kvserve::cuda_device_count(); }
