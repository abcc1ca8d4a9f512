// The field tables the bindings are generated from: one line per C++ struct,
// naming its members in declaration order. Descriptors become Python classes
// with keyword constructors from these tables; run / prepare arguments are
// filled from keyword arguments by walking them. A struct missing here cannot
// be bound, so a header change shows up as a compile error in one place.
#pragma once

#include <string_view>
#include <tuple>

#include <kvserve/attention.hpp>
#include <kvserve/gdn.hpp>
#include <kvserve/kv_cache.hpp>
#include <kvserve/merge.hpp>
#include <kvserve/mla.hpp>
#include <kvserve/norm.hpp>
#include <kvserve/penalty.hpp>
#include <kvserve/sampling.hpp>
#include <kvserve/speculative.hpp>

namespace kvserve::py {

template <class T, class M>
struct Field {
  const char* name;
  M T::*member;
};

template <class T>
struct Fields;  // static constexpr auto list: a tuple of Field<T, M>

#define KVSERVE_PY_FIELD(T, name) Field<T, decltype(T::name)>{#name, &T::name}
#define KVSERVE_PY_FIELDS(T, ...)                                               \
  template <>                                                                   \
  struct Fields<T> {                                                            \
    using S = T;                                                                \
    static constexpr const char* kName = #T;                                    \
    static inline const auto list = std::make_tuple(__VA_ARGS__);               \
  }
#define F(name) KVSERVE_PY_FIELD(S, name)

// ----------------------------------------------------------- descriptors --
KVSERVE_PY_FIELDS(AttentionParams, F(sm_scale), F(logits_soft_cap), F(window_left));
KVSERVE_PY_FIELDS(PagedKvDesc, F(page_size), F(num_pages), F(num_kv_heads), F(head_dim), F(dtype), F(layout),
                  F(k_scale), F(v_scale));
KVSERVE_PY_FIELDS(BatchPagedDecodeDesc, F(max_batch), F(num_qo_heads), F(kv), F(q_dtype), F(attn),
                  F(kv_split_tokens));
KVSERVE_PY_FIELDS(SingleDecodeDesc, F(max_batch), F(num_qo_heads), F(num_kv_heads), F(head_dim), F(dtype),
                  F(attn), F(kv_split_tokens));
KVSERVE_PY_FIELDS(SinglePrefillDesc, F(num_qo_heads), F(num_kv_heads), F(head_dim), F(head_dim_v), F(dtype),
                  F(layout), F(causal), F(attn));
KVSERVE_PY_FIELDS(BatchRaggedPrefillDesc, F(max_batch), F(num_qo_heads), F(num_kv_heads), F(head_dim),
                  F(head_dim_v), F(dtype), F(causal), F(attn));
KVSERVE_PY_FIELDS(BatchPagedPrefillDesc, F(max_batch), F(num_qo_heads), F(kv), F(q_dtype), F(causal), F(attn));
KVSERVE_PY_FIELDS(CascadeAttentionDesc, F(max_batch), F(max_groups), F(num_qo_heads), F(kv), F(q_dtype), F(attn));
KVSERVE_PY_FIELDS(MergeStateDesc, F(num_heads), F(head_dim), F(dtype));
KVSERVE_PY_FIELDS(MergeStatesDesc, F(num_heads), F(head_dim), F(dtype));
KVSERVE_PY_FIELDS(PagedKvAppendDesc, F(kv), F(dtype), F(mode));
KVSERVE_PY_FIELDS(PagedMlaDesc, F(page_size), F(num_pages), F(ckv_dim), F(kpe_dim), F(dtype));
KVSERVE_PY_FIELDS(KvCacheAppendDesc, F(num_kv_heads), F(head_dim), F(dtype));
KVSERVE_PY_FIELDS(BatchPagedMlaDecodeDesc, F(max_batch), F(num_heads), F(cache), F(sm_scale), F(kv_split_tokens));
KVSERVE_PY_FIELDS(SamplingDesc, F(vocab), F(max_batch), F(input), F(filter), F(order), F(temperature), F(top_k),
                  F(top_p), F(min_p), F(params), F(random));
KVSERVE_PY_FIELDS(SamplingRenormDesc, F(vocab), F(max_batch), F(kind), F(top_k), F(top_p), F(params));
KVSERVE_PY_FIELDS(ChainSpeculativeSamplingDesc, F(vocab), F(max_batch), F(num_draft_tokens), F(random));
KVSERVE_PY_FIELDS(TokenPenaltyDesc, F(vocab), F(max_batch), F(history), F(repetition), F(frequency), F(presence),
                  F(params));
KVSERVE_PY_FIELDS(RmsNormDesc, F(hidden_size), F(dtype), F(eps), F(weight_offset), F(fused_add));
KVSERVE_PY_FIELDS(GdnPrefillDesc, F(max_batch), F(max_tokens), F(num_qk_heads), F(num_v_heads), F(head_dim_k),
                  F(head_dim_v), F(dtype), F(scale), F(use_qk_l2norm), F(l2norm_eps));
KVSERVE_PY_FIELDS(GdnDecodeDesc, F(max_batch), F(num_state_slots), F(num_qk_heads), F(num_v_heads), F(head_dim_k),
                  F(head_dim_v), F(dtype), F(scale), F(use_qk_l2norm), F(l2norm_eps));

// ------------------------------------------------- run / prepare arguments --
KVSERVE_PY_FIELDS(PagedKv, F(k_pages), F(v_pages), F(indptr), F(indices), F(last_page_len));
KVSERVE_PY_FIELDS(PagedMlaCache, F(ckv_pages), F(kpe_pages), F(indptr), F(indices), F(last_page_len));
KVSERVE_PY_FIELDS(BatchPagedDecodeArgs, F(q), F(kv), F(out), F(lse));
KVSERVE_PY_FIELDS(SingleDecodeArgs, F(q), F(k), F(v), F(kv_len), F(out), F(lse));
KVSERVE_PY_FIELDS(SinglePrefillArgs, F(q), F(k), F(v), F(out), F(lse));
KVSERVE_PY_FIELDS(BatchRaggedPrefillArgs, F(q), F(k), F(v), F(qo_indptr), F(kv_indptr), F(out), F(lse));
KVSERVE_PY_FIELDS(BatchPagedPrefillArgs, F(q), F(qo_indptr), F(kv), F(out), F(lse));
KVSERVE_PY_FIELDS(CascadeAttentionArgs, F(q), F(group_indptr), F(prefix), F(suffix), F(out), F(lse));
KVSERVE_PY_FIELDS(MergeStateArgs, F(v_a), F(lse_a), F(v_b), F(lse_b), F(v_out), F(lse_out));
KVSERVE_PY_FIELDS(MergeStatesArgs, F(v), F(lse), F(v_out), F(lse_out));
KVSERVE_PY_FIELDS(PagedKvAppendArgs, F(k), F(v), F(batch_indices), F(positions), F(kv));
KVSERVE_PY_FIELDS(PagedMlaAppendArgs, F(ckv), F(kpe), F(batch_indices), F(positions), F(cache));
KVSERVE_PY_FIELDS(BatchPagedMlaDecodeArgs, F(q_nope), F(q_pe), F(cache), F(out), F(lse));
KVSERVE_PY_FIELDS(KvCacheAppendArgs, F(k), F(v), F(batch_indices), F(positions), F(k_cache), F(v_cache));
KVSERVE_PY_FIELDS(SamplingArgs, F(input), F(out), F(temperature), F(top_k), F(top_p), F(min_p), F(seed), F(offset),
                  F(seeds), F(offsets));
KVSERVE_PY_FIELDS(SamplingRenormArgs, F(input), F(out), F(top_k), F(top_p));
KVSERVE_PY_FIELDS(ChainSpeculativeSamplingArgs, F(draft_token_ids), F(draft_probs), F(target_probs), F(out),
                  F(accepted), F(emitted), F(seed), F(offset), F(seeds), F(offsets));
KVSERVE_PY_FIELDS(TokenPenaltyArgs, F(logits), F(counts), F(token_ids), F(repetition), F(frequency), F(presence));
KVSERVE_PY_FIELDS(RmsNormArgs, F(x), F(weight), F(residual), F(out));
KVSERVE_PY_FIELDS(GdnPrefillArgs, F(q), F(k), F(v), F(alpha), F(beta), F(cu_seqlens), F(initial_state), F(out),
                  F(final_state));
KVSERVE_PY_FIELDS(GdnDecodeArgs, F(q), F(k), F(v), F(alpha), F(beta), F(state_indices), F(state), F(out));
KVSERVE_PY_FIELDS(PagedKvLengths, F(indptr), F(last_page_len));
KVSERVE_PY_FIELDS(RaggedLengths, F(qo_indptr), F(kv_indptr));
KVSERVE_PY_FIELDS(PagedPrefillLengths, F(qo_indptr), F(kv));
KVSERVE_PY_FIELDS(CascadeLengths, F(group_indptr), F(prefix), F(suffix));

// ------------------------------------------------------- plan identity --
KVSERVE_PY_FIELDS(Precision, F(math), F(accumulator), F(deterministic), F(batch_invariant));
KVSERVE_PY_FIELDS(KernelInfo, F(backend), F(arch), F(op), F(config), F(precision));
KVSERVE_PY_FIELDS(CompiledKernel, F(backend), F(op), F(config));

#undef F

// The arguments each op writes (paths as the bindings name them): those must
// be writable arrays, so a read-only numpy array is refused instead of being
// written behind its flag.
template <class Op>
struct Written;
#define KVSERVE_PY_WRITTEN(Op, ...)                                                   \
  template <>                                                                         \
  struct Written<Op> {                                                                \
    static constexpr std::string_view list[] = {__VA_ARGS__};                         \
  }
KVSERVE_PY_WRITTEN(BatchPagedDecode, "out", "lse");
KVSERVE_PY_WRITTEN(SingleDecode, "out", "lse");
KVSERVE_PY_WRITTEN(SinglePrefill, "out", "lse");
KVSERVE_PY_WRITTEN(BatchRaggedPrefill, "out", "lse");
KVSERVE_PY_WRITTEN(BatchPagedPrefill, "out", "lse");
KVSERVE_PY_WRITTEN(CascadeAttention, "out", "lse");
KVSERVE_PY_WRITTEN(MergeState, "v_out", "lse_out");
KVSERVE_PY_WRITTEN(MergeStates, "v_out", "lse_out");
KVSERVE_PY_WRITTEN(PagedKvAppend, "kv.k_pages", "kv.v_pages");
KVSERVE_PY_WRITTEN(PagedMlaAppend, "cache.ckv_pages", "cache.kpe_pages");
KVSERVE_PY_WRITTEN(KvCacheAppend, "k_cache", "v_cache");
KVSERVE_PY_WRITTEN(BatchPagedMlaDecode, "out", "lse");
KVSERVE_PY_WRITTEN(Sampling, "out");
KVSERVE_PY_WRITTEN(SamplingRenorm, "out");
KVSERVE_PY_WRITTEN(ChainSpeculativeSampling, "out", "accepted", "emitted");
KVSERVE_PY_WRITTEN(TokenPenalty, "logits");
KVSERVE_PY_WRITTEN(RmsNorm, "out", "residual");
KVSERVE_PY_WRITTEN(GdnPrefill, "out", "final_state");
KVSERVE_PY_WRITTEN(GdnDecode, "out", "state");
#undef KVSERVE_PY_WRITTEN

template <class T>
concept HasFields = requires { Fields<T>::list; };

// Calls fn(field) for every field of T, in order.
template <class T, class Fn>
void for_each_field(Fn&& fn) {
  std::apply([&](const auto&... f) { (fn(f), ...); }, Fields<T>::list);
}

}  // namespace kvserve::py
