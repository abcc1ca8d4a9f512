// CPU kernels for the attention ops: each says where a request's queries and
// keys are, gathers KV rows and calls attend(); cascade merges two such results
// through SoftmaxState.
#include <algorithm>
#include <vector>

#include "core/backend_kernels.hpp"
#include "core/check.hpp"
#include "core/paged_kv_rules.hpp"
#include "cpu/attention_core.hpp"
#include "cpu/cpu_info.hpp"
#include "cpu/parallel.hpp"
#include "cpu/softmax_state.hpp"

namespace kvserve::detail {
namespace {

// Queries of one request handed to one task: bounded so that long prefills
// spread over threads, and large enough that re-gathering the request's KV
// per block costs little next to the block's q.k products.
constexpr std::int64_t kQueryBlock = 64;

// Where one request's queries and keys are: query rows q_row0 .. q_row0 +
// q_len of q, kv_len keys; query i sits at position i + kv_len - q_len.
struct RequestSpan {
  std::int64_t q_row0 = 0, q_len = 0, kv_len = 0;
};

// Attention for a batch of requests, in parallel over (request, KV head,
// block of queries). span(b) locates request b; gather(b, h, n, &rows) fills
// the first n keys of request b's KV head h (a causal block needs no key past
// its last query).
template <class SpanOf, class Gather>
void attend_batch(const cpu::MaskParams& mp, std::int64_t batch, int num_kv_heads, int group, int head_dim,
                  int head_dim_v, const TensorView& q, const TensorView& out, const TensorView& lse, SpanOf&& span,
                  Gather&& gather) {
  struct Block {
    std::int64_t request, i0, n;
    int h;
  };
  std::vector<Block> blocks;
  std::int64_t flops = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    const RequestSpan s = span(b);
    for (int h = 0; h < num_kv_heads; ++h)
      for (std::int64_t i0 = 0; i0 < s.q_len; i0 += kQueryBlock)
        blocks.push_back({b, i0, std::min(kQueryBlock, s.q_len - i0), h});
    flops += 2 * s.q_len * num_kv_heads * group * s.kv_len * (head_dim + head_dim_v);
  }
  const std::int64_t cost = blocks.empty() ? 0 : flops / static_cast<std::int64_t>(blocks.size());
  cpu::parallel_for(static_cast<std::int64_t>(blocks.size()), cost, [&](std::int64_t t) {
    const Block& blk = blocks[static_cast<std::size_t>(t)];
    const RequestSpan s = span(blk.request);
    const std::int64_t first_pos = blk.i0 + s.kv_len - s.q_len;
    const std::int64_t keys = mp.causal ? std::clamp<std::int64_t>(first_pos + blk.n, 0, s.kv_len) : s.kv_len;
    cpu::KvRows kv;
    gather(blk.request, blk.h, keys, &kv);
    cpu::attend_group(mp, kv, q, s.q_row0 + blk.i0, blk.n, first_pos, blk.h, group, out, lse);
  });
}

std::int64_t host_entry(const TensorView& int32_vector, std::int64_t i) {
  return int32_vector.ptr<const std::int32_t>()[i];
}

// One KV head of contiguous k and v: `first` indexes the head's first key and
// `token_dim` is the token axis.
cpu::StridedKv strided_head(const TensorView& k, const TensorView& v, std::initializer_list<std::int64_t> first,
                            int token_dim) {
  return {k.dtype, cpu::element_ptr(k, first), k.strides[token_dim], cpu::element_ptr(v, first), v.strides[token_dim]};
}

std::string contiguous_config(DType dtype, int head_dim, int head_dim_v, std::string_view extra) {
  return cpu::config("dtype", dtype, "d", head_dim, "dv", head_dim_v) +
         (extra.empty() ? "" : " ") + std::string(extra);
}

// ------------------------------------------------------- BatchPagedDecode --

Status run_batch_paged_decode(const PlanState<BatchPagedDecode>& p, const BatchPagedDecodeArgs& a, Workspace, Stream) {
  const auto& d = p.desc;
  const int group = d.num_qo_heads / d.kv.num_kv_heads;
  attend_batch(
      cpu::mask_params(d.attn, d.kv.head_dim, /*causal=*/true), a.q.shape[0], d.kv.num_kv_heads, group,
      d.kv.head_dim, d.kv.head_dim, a.q, a.out, a.lse,
      [&](std::int64_t b) { return RequestSpan{b, 1, cpu::paged_row(a.kv, b, d.kv.page_size).len}; },
      [&](std::int64_t b, int h, std::int64_t n, cpu::KvRows* rows) {
        cpu::PagedRow row = cpu::paged_row(a.kv, b, d.kv.page_size);
        row.len = n;
        cpu::gather_paged(d.kv, a.kv, row, h, rows);
      });
  return Status::ok();
}

// ----------------------------------------------------------- SingleDecode --

Status run_single_decode(const PlanState<SingleDecode>& p, const SingleDecodeArgs& a, Workspace, Stream) {
  const auto& d = p.desc;
  attend_batch(
      cpu::mask_params(d.attn, d.head_dim, /*causal=*/true), a.q.shape[0], d.num_kv_heads,
      d.num_qo_heads / d.num_kv_heads, d.head_dim, d.head_dim, a.q, a.out, a.lse,
      [&](std::int64_t b) { return RequestSpan{b, 1, a.kv_len.defined() ? host_entry(a.kv_len, b) : a.k.shape[2]}; },
      [&](std::int64_t b, int h, std::int64_t n, cpu::KvRows* rows) {
        cpu::gather_strided(strided_head(a.k, a.v, {b, h, 0, 0}, 2), n, d.head_dim, d.head_dim, rows);
      });
  return Status::ok();
}

// ---------------------------------------------------------- SinglePrefill --

Status run_single_prefill(const PlanState<SinglePrefill>& p, const SinglePrefillArgs& a, Workspace, Stream) {
  const auto& d = p.desc;
  const bool nhd = d.layout == KvLayout::NHD;
  const std::int64_t kv_len = nhd ? a.k.shape[0] : a.k.shape[1];
  attend_batch(
      cpu::mask_params(d.attn, d.head_dim, d.causal), 1, d.num_kv_heads, d.num_qo_heads / d.num_kv_heads,
      d.head_dim, value_head_dim(d.head_dim, d.head_dim_v), a.q, a.out, a.lse,
      [&](std::int64_t) { return RequestSpan{0, a.q.shape[0], kv_len}; },
      [&](std::int64_t, int h, std::int64_t n, cpu::KvRows* rows) {
        const cpu::StridedKv head = nhd ? strided_head(a.k, a.v, {0, h, 0}, 0) : strided_head(a.k, a.v, {h, 0, 0}, 1);
        cpu::gather_strided(head, n, d.head_dim, value_head_dim(d.head_dim, d.head_dim_v), rows);
      });
  return Status::ok();
}

// ----------------------------------------------------- BatchRaggedPrefill --

Status run_batch_ragged_prefill(const PlanState<BatchRaggedPrefill>& p, const BatchRaggedPrefillArgs& a, Workspace,
                                Stream) {
  const auto& d = p.desc;
  const int dv = value_head_dim(d.head_dim, d.head_dim_v);
  attend_batch(
      cpu::mask_params(d.attn, d.head_dim, d.causal), a.qo_indptr.shape[0] - 1, d.num_kv_heads,
      d.num_qo_heads / d.num_kv_heads, d.head_dim, dv, a.q, a.out, a.lse,
      [&](std::int64_t b) {
        const std::int64_t q0 = host_entry(a.qo_indptr, b), kv0 = host_entry(a.kv_indptr, b);
        return RequestSpan{q0, host_entry(a.qo_indptr, b + 1) - q0, host_entry(a.kv_indptr, b + 1) - kv0};
      },
      [&](std::int64_t b, int h, std::int64_t n, cpu::KvRows* rows) {
        cpu::gather_strided(strided_head(a.k, a.v, {host_entry(a.kv_indptr, b), h, 0}, 0), n, d.head_dim, dv, rows);
      });
  return Status::ok();
}

// ------------------------------------------------------ BatchPagedPrefill --

Status run_batch_paged_prefill(const PlanState<BatchPagedPrefill>& p, const BatchPagedPrefillArgs& a, Workspace,
                               Stream) {
  const auto& d = p.desc;
  attend_batch(
      cpu::mask_params(d.attn, d.kv.head_dim, d.causal), a.qo_indptr.shape[0] - 1, d.kv.num_kv_heads,
      d.num_qo_heads / d.kv.num_kv_heads, d.kv.head_dim, d.kv.head_dim, a.q, a.out, a.lse,
      [&](std::int64_t b) {
        const std::int64_t q0 = host_entry(a.qo_indptr, b);
        return RequestSpan{q0, host_entry(a.qo_indptr, b + 1) - q0, cpu::paged_row(a.kv, b, d.kv.page_size).len};
      },
      [&](std::int64_t b, int h, std::int64_t n, cpu::KvRows* rows) {
        cpu::PagedRow row = cpu::paged_row(a.kv, b, d.kv.page_size);
        row.len = n;
        cpu::gather_paged(d.kv, a.kv, row, h, rows);
      });
  return Status::ok();
}

// ------------------------------------------------------- CascadeAttention --

// Per (group, KV head): the group's prefix is gathered once and attended by
// all its requests' queries in one pass; then each request's suffix, and the
// two fp32 states merge before the output is rounded once.
Status run_cascade(const PlanState<CascadeAttention>& p, const CascadeAttentionArgs& a, Workspace, Stream) {
  const auto& d = p.desc;
  const int hkv = d.kv.num_kv_heads, group = d.num_qo_heads / hkv, dim = d.kv.head_dim;
  const cpu::MaskParams mp = cpu::mask_params(d.attn, dim, /*causal=*/true);
  const std::int64_t groups = a.group_indptr.shape[0] - 1;
  std::int64_t keys_read = 0;  // by all query heads together
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::int64_t r0 = host_entry(a.group_indptr, g), r1 = host_entry(a.group_indptr, g + 1);
    keys_read += (r1 - r0) * cpu::paged_row(a.prefix, g, d.kv.page_size).len;
    for (std::int64_t r = r0; r < r1; ++r) keys_read += cpu::paged_row(a.suffix, r, d.kv.page_size).len;
  }
  const std::int64_t cost = keys_read * d.num_qo_heads * 4 * dim / std::max<std::int64_t>(1, groups * hkv);
  cpu::parallel_for(groups * hkv, cost, [&](std::int64_t task) {
    const std::int64_t g = task / hkv;
    const int h = static_cast<int>(task % hkv);
    const std::int64_t r0 = host_entry(a.group_indptr, g), requests = host_entry(a.group_indptr, g + 1) - r0;
    if (requests == 0) return;
    const cpu::PagedRow prefix_row = cpu::paged_row(a.prefix, g, d.kv.page_size);
    cpu::KvRows prefix, suffix;
    cpu::gather_paged(d.kv, a.prefix, prefix_row, h, &prefix);

    // Request r's query sits after its whole prefix + suffix.
    const std::int64_t rows = requests * group;
    std::vector<float> qf(static_cast<std::size_t>(rows * dim)), prefix_o(qf.size()), prefix_lse(rows);
    std::vector<std::int64_t> pos(rows);
    for (std::int64_t r = 0; r < requests; ++r) {
      cpu::load_query_heads(a.q, r0 + r, h, group, qf.data() + r * group * dim);
      std::fill_n(pos.begin() + r * group, group,
                  prefix_row.len + cpu::paged_row(a.suffix, r0 + r, d.kv.page_size).len - 1);
    }
    cpu::attend(mp, prefix, qf, pos, prefix_o, prefix_lse);

    std::vector<float> suffix_o(static_cast<std::size_t>(group * dim)), suffix_lse(group);
    std::vector<float> merged_o(suffix_o.size()), merged_lse(group);
    cpu::SoftmaxState state(dim);
    for (std::int64_t r = 0; r < requests; ++r) {
      const cpu::PagedRow suffix_row = cpu::paged_row(a.suffix, r0 + r, d.kv.page_size);
      cpu::gather_paged(d.kv, a.suffix, suffix_row, h, &suffix);
      const std::span<const float> q_r(qf.data() + r * group * dim, static_cast<std::size_t>(group * dim));
      const std::vector<std::int64_t> suffix_pos(group, suffix_row.len - 1);
      cpu::attend(mp, suffix, q_r, suffix_pos, suffix_o, suffix_lse);
      for (int gq = 0; gq < group; ++gq) {
        const std::int64_t row = r * group + gq;
        state.clear();
        state.merge(prefix_o.data() + row * dim, prefix_lse[row]);
        state.merge(suffix_o.data() + gq * dim, suffix_lse[gq]);
        state.finish(merged_o.data() + gq * dim, &merged_lse[gq]);
      }
      cpu::store_query_heads(merged_o.data(), merged_lse.data(), r0 + r, h, group, a.out, a.lse);
    }
  });
  return Status::ok();
}

}  // namespace

template <>
Result<Kernel<BatchPagedDecode>> cpu_kernel<BatchPagedDecode>(const BatchPagedDecodeDesc& d) {
  return cpu::make_kernel<BatchPagedDecode>(paged_config(d.q_dtype, d.kv), run_batch_paged_decode);
}

template <>
Result<Kernel<SingleDecode>> cpu_kernel<SingleDecode>(const SingleDecodeDesc& d) {
  return cpu::make_kernel<SingleDecode>(contiguous_config(d.dtype, d.head_dim, d.head_dim, ""), run_single_decode);
}

template <>
Result<Kernel<SinglePrefill>> cpu_kernel<SinglePrefill>(const SinglePrefillDesc& d) {
  return cpu::make_kernel<SinglePrefill>(
      contiguous_config(d.dtype, d.head_dim, value_head_dim(d.head_dim, d.head_dim_v),
                        std::string("layout=") + std::string(name_of(d.layout)) + (d.causal ? " causal" : "")),
      run_single_prefill);
}

template <>
Result<Kernel<BatchRaggedPrefill>> cpu_kernel<BatchRaggedPrefill>(const BatchRaggedPrefillDesc& d) {
  return cpu::make_kernel<BatchRaggedPrefill>(
      contiguous_config(d.dtype, d.head_dim, value_head_dim(d.head_dim, d.head_dim_v), d.causal ? "causal" : ""),
      run_batch_ragged_prefill);
}

template <>
Result<Kernel<BatchPagedPrefill>> cpu_kernel<BatchPagedPrefill>(const BatchPagedPrefillDesc& d) {
  return cpu::make_kernel<BatchPagedPrefill>(paged_config(d.q_dtype, d.kv) + (d.causal ? " causal" : ""),
                                        run_batch_paged_prefill);
}

template <>
Result<Kernel<CascadeAttention>> cpu_kernel<CascadeAttention>(const CascadeAttentionDesc& d) {
  return cpu::make_kernel<CascadeAttention>(paged_config(d.q_dtype, d.kv), run_cascade);
}

}  // namespace kvserve::detail
