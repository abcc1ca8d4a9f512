#include "capi/capi.hpp"

#include <algorithm>

namespace kvserve::capi {

Device to_device(kvs_device d) {
  return d.kind == KVS_DEVICE_CUDA ? Device::cuda(d.ordinal) : Device{DeviceKind::cpu, d.ordinal};
}

DType to_dtype(kvs_dtype t) { return static_cast<DType>(t); }

TensorView to_view(const kvs_tensor& t) {
  TensorView v;
  v.data = t.data;
  v.dtype = to_dtype(t.dtype);
  v.rank = std::clamp<int>(t.rank, 0, kMaxRank);
  for (int i = 0; i < v.rank; ++i) {
    v.shape[i] = t.shape[i];
    v.strides[i] = t.strides[i];
  }
  v.device = to_device(t.device);
  return v;
}

AttentionParams to_params(const kvs_attention_params& p) {
  AttentionParams a;
  if (p.sm_scale > 0) a.sm_scale = p.sm_scale;
  a.logits_soft_cap = p.logits_soft_cap;
  a.window_left = p.window_left;
  return a;
}

PagedKvDesc to_desc(const kvs_paged_kv_desc& d) {
  PagedKvDesc kv;
  kv.page_size = d.page_size;
  kv.num_pages = d.num_pages;
  kv.num_kv_heads = d.num_kv_heads;
  kv.head_dim = d.head_dim;
  kv.dtype = to_dtype(d.dtype);
  kv.layout = d.layout == KVS_HND ? KvLayout::HND : KvLayout::NHD;
  if (d.k_scale != nullptr && d.num_k_scale > 0) kv.k_scale.assign(d.k_scale, d.k_scale + d.num_k_scale);
  if (d.v_scale != nullptr && d.num_v_scale > 0) kv.v_scale.assign(d.v_scale, d.v_scale + d.num_v_scale);
  return kv;
}

PagedKv to_paged(const kvs_paged_kv& kv) {
  return PagedKv{to_view(kv.k_pages), to_view(kv.v_pages), to_view(kv.indptr), to_view(kv.indices),
                 to_view(kv.last_page_len)};
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
