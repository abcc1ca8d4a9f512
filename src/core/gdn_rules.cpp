// Validation for GdnPrefill and GdnDecode.
#include <algorithm>
#include <span>
#include <vector>

#include "core/plan_impl.hpp"
#include "kvserve/gdn.hpp"

namespace kvserve {
namespace detail {

namespace {

// The fields GdnPrefillDesc and GdnDecodeDesc share: heads, head dims, dtype,
// scale and the l2 norm.
template <class Desc>
Status check_gdn_heads(const char* op, const Desc& d) {
  KVSERVE_TRY(check_size(op, "num_qk_heads", d.num_qk_heads, kMaxHeads));
  KVSERVE_TRY(check_size(op, "num_v_heads", d.num_v_heads, kMaxHeads));
  // One head count must be a multiple of the other (GVA or GQA, or equal).
  if (d.num_v_heads >= d.num_qk_heads)
    KVSERVE_TRY(check_divisible(op, "num_v_heads", d.num_v_heads, "num_qk_heads", d.num_qk_heads));
  else
    KVSERVE_TRY(check_divisible(op, "num_qk_heads", d.num_qk_heads, "num_v_heads", d.num_v_heads));
  KVSERVE_TRY(check_head_dim(op, "head_dim_k", d.head_dim_k));
  KVSERVE_TRY(check_head_dim(op, "head_dim_v", d.head_dim_v));
  KVSERVE_TRY(check_activation_dtype(op, "dtype", d.dtype));
  if (d.scale) KVSERVE_TRY(check_finite_positive(op, "scale", *d.scale));
  KVSERVE_TRY(check_finite_positive(op, "l2norm_eps", d.l2norm_eps));
  return Status::ok();
}

// q, k, v, alpha and beta of `tokens` tokens.
template <class Desc, class Args>
Status check_gdn_inputs(const char* op, const Desc& d, Device device, const Args& a, std::int64_t tokens) {
  const std::int64_t heads = std::max(d.num_qk_heads, d.num_v_heads);
  KVSERVE_TRY(check_tensor(op, "k", a.k, device, d.dtype, {tokens, d.num_qk_heads, d.head_dim_k}));
  KVSERVE_TRY(check_tensor(op, "v", a.v, device, d.dtype, {tokens, d.num_v_heads, d.head_dim_v}));
  KVSERVE_TRY(check_tensor(op, "alpha", a.alpha, device, DType::f32, {tokens, heads}));
  KVSERVE_TRY(check_tensor(op, "beta", a.beta, device, DType::f32, {tokens, heads}));
  return Status::ok();
}

}  // namespace

template <>
Status OpRules<GdnPrefill>::check_desc(const GdnPrefillDesc& d) {
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_size(op, "max_tokens", d.max_tokens, kMaxTokens));
  return check_gdn_heads(op, d);
}

template <>
Status OpRules<GdnPrefill>::check_args(const PlanState<GdnPrefill>& p, const GdnPrefillArgs& a) {
  const auto& d = p.desc;
  const std::int64_t heads = std::max(d.num_qk_heads, d.num_v_heads);
  KVSERVE_TRY(check_tensor(op, "q", a.q, p.device, d.dtype, {kAny, d.num_qk_heads, d.head_dim_k}));
  const std::int64_t tokens = a.q.shape[0];
  if (tokens > d.max_tokens)
    return invalid_arg(op, "q", "at most max_tokens (" + to_text(d.max_tokens) + ") tokens", to_text(tokens));
  KVSERVE_TRY(check_gdn_inputs(op, d, p.device, a, tokens));

  KVSERVE_TRY(check_tensor(op, "cu_seqlens", a.cu_seqlens, p.device, DType::int32, {kAny}));
  const std::int64_t batch = a.cu_seqlens.shape[0] - 1;
  if (batch < 0 || batch > d.max_batch)
    return invalid_arg(op, "cu_seqlens",
                       "B + 1 entries with B in [0, max_batch = " + to_text(std::int64_t{d.max_batch}) + "]",
                       to_text(a.cu_seqlens.shape[0]) + " entries");
  if (p.device.is_cpu()) {
    // Host memory: the offsets themselves can be checked for free.
    const std::span<const std::int32_t> cu(a.cu_seqlens.ptr<const std::int32_t>(),
                                           static_cast<std::size_t>(batch + 1));
    KVSERVE_TRY(check_indptr(op, "cu_seqlens", cu));
    if (cu.back() != tokens)
      return invalid_arg(op, "cu_seqlens", "last entry equal to the token count of q (" + to_text(tokens) + ")",
                         to_text(std::int64_t{cu.back()}));
  }

  const std::initializer_list<std::int64_t> state_shape = {batch, heads, d.head_dim_v, d.head_dim_k};
  KVSERVE_TRY(check_optional_tensor(op, "initial_state", a.initial_state, p.device, DType::f32, state_shape));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, d.dtype, {tokens, heads, d.head_dim_v}));
  KVSERVE_TRY(check_optional_tensor(op, "final_state", a.final_state, p.device, DType::f32, state_shape));
  return Status::ok();
}

template <>
Status OpRules<GdnDecode>::check_desc(const GdnDecodeDesc& d) {
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_size(op, "num_state_slots", d.num_state_slots, kMaxBatch));
  return check_gdn_heads(op, d);
}

template <>
Status OpRules<GdnDecode>::check_args(const PlanState<GdnDecode>& p, const GdnDecodeArgs& a) {
  const auto& d = p.desc;
  const std::int64_t heads = std::max(d.num_qk_heads, d.num_v_heads);
  KVSERVE_TRY(check_tensor(op, "q", a.q, p.device, d.dtype, {kAny, d.num_qk_heads, d.head_dim_k}));
  const std::int64_t batch = a.q.shape[0];
  if (batch > d.max_batch)
    return invalid_arg(op, "q", "at most max_batch (" + to_text(std::int64_t{d.max_batch}) + ") sequences",
                       to_text(batch));
  KVSERVE_TRY(check_gdn_inputs(op, d, p.device, a, batch));
  KVSERVE_TRY(check_tensor(op, "state_indices", a.state_indices, p.device, DType::int32, {batch}));
  KVSERVE_TRY(check_tensor(op, "state", a.state, p.device, DType::f32,
                           {d.num_state_slots, heads, d.head_dim_v, d.head_dim_k}));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, d.dtype, {batch, heads, d.head_dim_v}));
  if (p.device.is_cpu()) {
    // Host memory: each index in [-1, slots), no slot twice.
    const std::int32_t* slot = a.state_indices.ptr<const std::int32_t>();
    std::vector<bool> taken(static_cast<std::size_t>(d.num_state_slots), false);
    for (std::int64_t b = 0; b < batch; ++b) {
      if (slot[b] == -1) continue;
      const std::string entry = "entry " + to_text(b) + " ";
      if (slot[b] < -1 || slot[b] >= d.num_state_slots)
        return invalid_arg(op, "state_indices",
                           "slots in [0, num_state_slots = " + to_text(std::int64_t{d.num_state_slots}) + ") or -1",
                           entry + to_text(std::int64_t{slot[b]}));
      if (taken[static_cast<std::size_t>(slot[b])])
        return invalid_arg(op, "state_indices", "distinct slots", entry + "repeats slot " + to_text(std::int64_t{slot[b]}));
      taken[static_cast<std::size_t>(slot[b])] = true;
    }
  }
  return Status::ok();
}

}  // namespace detail

template class Plan<GdnPrefill>;
template class Plan<GdnDecode>;

}  // namespace kvserve
