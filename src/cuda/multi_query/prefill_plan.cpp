// The prefill ops on CUDA, all on the multi-query kernel over tiles of
// (token, head) rows of each request, written straight to out / lse:
// - BatchPagedPrefill and BatchRaggedPrefill: the workspace holds one record
//   per request (prepare() stages it); the kernel finds each block's request
//   and tile from them, so the workspace does not grow with the tokens, and
//   run() reads only device memory. Ragged K/V is the kernel's contiguous
//   addressing (no page table: key j of request b is row kv_indptr[b] + j).
// - SinglePrefill (no prepare): its one request travels inside the kernel's
//   parameters; no workspace.
// Rows never split across blocks, so every row is batch invariant.
#include <climits>
#include <string>
#include <vector>

#include "core/check.hpp"
#include "core/paged_kv_rules.hpp"
#include "cuda/common/runtime.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/multi_query/multi_query_host.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

// What a prefill run needs beside its K/V: the checked query side (q, out,
// lse), masks and logit scales.
struct PrefillQuery {
  const TensorView& q;
  const TensorView& out;
  const TensorView& lse;
  bool causal;
  const AttentionParams& attn;
  int head_dim;
};

Status prefill_params(std::string_view op, const PrefillQuery& query, MultiQueryParams* prm) {
  KVSERVE_TRY(check_16_byte_rows(op, "q", query.q, 2));
  KVSERVE_TRY(check_16_byte_rows(op, "out", query.out, 2));
  prm->q = query.q.data;
  prm->q_stride_t = query.q.strides[0], prm->q_stride_h = query.q.strides[1];
  prm->out = query.out.data;
  prm->out_stride_t = query.out.strides[0], prm->out_stride_h = query.out.strides[1];
  if (query.lse.defined()) {
    prm->lse = query.lse.ptr<float>();
    prm->lse_stride_t = query.lse.strides[0], prm->lse_stride_h = query.lse.strides[1];
  }
  prm->causal = query.causal;
  set_logit_scales(prm, query.attn, query.head_dim);
  return Status::ok();
}

// Contiguous K and V: rows of (token, head) at the given element strides.
void set_contiguous_kv(MultiQueryParams* prm, const TensorView& k, const TensorView& v, int token_dim, int head_dim) {
  prm->k_pages = k.data, prm->v_pages = v.data;
  prm->k_stride_slot = k.strides[token_dim], prm->k_stride_head = k.strides[head_dim];
  prm->v_stride_slot = v.strides[token_dim], prm->v_stride_head = v.strides[head_dim];
  prm->indices[0] = nullptr;
}

// prepare() of the batched ops: request b's queries are rows qo_indptr[b]..
// of q, its keys `kv[b]`.
Status prepare_requests(std::string_view op, Device device, MultiQueryResources& r, std::span<const std::int32_t> qo_indptr,
                        std::span<const KvSpan> kv, Workspace ws, Stream stream) {
  return stage_schedule(op, device, r, ws, stream, [&](void* staging) {
    return build_prefill_schedule(r.sizing, qo_indptr, kv, staging);
  });
}

// run() of the batched ops once `prm` holds the query side and K/V.
Status run_requests(std::string_view op, Device device, const MultiQueryResources& r, MultiQueryParams& prm,
                    std::int64_t total_q, std::int64_t batch, Workspace ws, Stream stream) {
  set_schedule(&prm, r.sizing, ws.data);
  KVSERVE_TRY(use_prefill_requests(op, &prm, prefill_max_tiles(r.sizing, total_q, batch)));
  return launch_multi_query_passes(op, device, r.kernel, prm, nullptr, stream);
}

// What a prefill op's selection depends on. max_batch 0: no prepare and no
// workspace (SinglePrefill).
struct PrefillShape {
  DType q, kv;
  int head_dim, head_dim_v;  // head_dim_v 0: head_dim
  int max_batch = 0, num_qo_heads = 0, num_kv_heads = 0;
};

// The selection every prefill op shares: the kernel table, V rows as wide
// as K's (what the kernel serves), the workspace and a batch-invariant
// identity (rows never split across blocks). The op sets run / prepare.
template <class Op>
Result<Kernel<Op>> prefill_kernel(Device device, const PrefillShape& s, std::string config) {
  auto entry = find_multi_query_kernel(Op::kName, s.q, s.kv, s.head_dim);
  if (!entry) return entry.status();
  if (s.head_dim_v != 0 && s.head_dim_v != s.head_dim)
    return Status::unsupported(std::string(Op::kName) + ": no CUDA kernel for head_dim_v " +
                               std::to_string(s.head_dim_v) + " != head_dim " + std::to_string(s.head_dim) +
                               " (built: head_dim_v = head_dim)");
  auto facts = device_facts(device);
  if (!facts) return facts.status();
  Kernel<Op> k;
  if (s.max_batch > 0) {
    const MultiQuerySizing z = prefill_sizing(s.max_batch, s.num_qo_heads, s.num_kv_heads, s.head_dim, facts->sm_count);
    config += " rows=" + std::to_string(z.shape.rows) + " tile=" + std::to_string(z.shape.tile_tokens) + "x" +
              std::to_string(z.shape.stages);
    k.workspace_bytes = z.workspace_bytes;
  }
  k.info = multi_query_info(Op::kName, facts->arch, std::move(config), /*batch_invariant=*/true);
  return k;
}

// ------------------------------------------------------ BatchPagedPrefill --

Status create_paged_prefill_resources(PlanState<BatchPagedPrefill>& p) {
  const auto& d = p.desc;
  return create_multi_query_resources(
      BatchPagedPrefill::kName, p.device, d.q_dtype, d.kv.dtype, d.kv.head_dim,
      [&](int sm_count) {
        return prefill_sizing(d.max_batch, d.num_qo_heads, d.kv.num_kv_heads, d.kv.head_dim, sm_count);
      },
      &p.backend_resources);
}

Status prepare_paged_prefill(PlanState<BatchPagedPrefill>& p, const PagedPrefillLengths& host, Workspace ws,
                             Stream stream) {
  const std::size_t batch = host.qo_indptr.size() - 1;
  std::vector<KvSpan> kv(batch);
  for (std::size_t b = 0; b < batch; ++b)
    kv[b] = {host.kv.indptr[b], paged_kv_len(host.kv.indptr.data(), host.kv.last_page_len.data(),
                                             static_cast<std::int64_t>(b), p.desc.kv.page_size)};
  return prepare_requests(BatchPagedPrefill::kName, p.device, *static_cast<MultiQueryResources*>(p.backend_resources.get()),
                          host.qo_indptr, kv, ws, stream);
}

Status run_paged_prefill(const PlanState<BatchPagedPrefill>& p, const BatchPagedPrefillArgs& a, Workspace ws,
                         Stream stream) {
  constexpr const char* op = BatchPagedPrefill::kName;
  const auto& d = p.desc;
  const std::int64_t total_q = a.q.shape[0], batch = a.qo_indptr.shape[0] - 1;
  if (total_q == 0 || batch == 0) return Status::ok();
  MultiQueryParams prm;
  KVSERVE_TRY(prefill_params(op, {a.q, a.out, a.lse, d.causal, d.attn, d.kv.head_dim}, &prm));
  KVSERVE_TRY(check_16_byte_rows(op, "kv.k_pages", a.kv.k_pages, 3));
  KVSERVE_TRY(check_16_byte_rows(op, "kv.v_pages", a.kv.v_pages, 3));
  set_paged_pools(&prm, d.kv, a.kv.k_pages, a.kv.v_pages);
  prm.indices[0] = a.kv.indices.ptr<const std::int32_t>();
  return run_requests(op, p.device, *static_cast<const MultiQueryResources*>(p.backend_resources.get()), prm,
                      total_q, batch, ws, stream);
}

// ----------------------------------------------------- BatchRaggedPrefill --

Status create_ragged_prefill_resources(PlanState<BatchRaggedPrefill>& p) {
  const auto& d = p.desc;
  return create_multi_query_resources(
      BatchRaggedPrefill::kName, p.device, d.dtype, d.dtype, d.head_dim,
      [&](int sm_count) { return prefill_sizing(d.max_batch, d.num_qo_heads, d.num_kv_heads, d.head_dim, sm_count); },
      &p.backend_resources);
}

Status prepare_ragged_prefill(PlanState<BatchRaggedPrefill>& p, const RaggedLengths& host, Workspace ws,
                              Stream stream) {
  const std::size_t batch = host.qo_indptr.size() - 1;
  std::vector<KvSpan> kv(batch);
  for (std::size_t b = 0; b < batch; ++b) kv[b] = {host.kv_indptr[b], host.kv_indptr[b + 1] - host.kv_indptr[b]};
  return prepare_requests(BatchRaggedPrefill::kName, p.device,
                          *static_cast<MultiQueryResources*>(p.backend_resources.get()), host.qo_indptr, kv, ws,
                          stream);
}

Status run_ragged_prefill(const PlanState<BatchRaggedPrefill>& p, const BatchRaggedPrefillArgs& a, Workspace ws,
                          Stream stream) {
  constexpr const char* op = BatchRaggedPrefill::kName;
  const auto& d = p.desc;
  const std::int64_t total_q = a.q.shape[0], batch = a.qo_indptr.shape[0] - 1;
  if (total_q == 0 || batch == 0) return Status::ok();
  MultiQueryParams prm;
  KVSERVE_TRY(prefill_params(op, {a.q, a.out, a.lse, d.causal, d.attn, d.head_dim}, &prm));
  KVSERVE_TRY(check_16_byte_rows(op, "k", a.k, 2));
  KVSERVE_TRY(check_16_byte_rows(op, "v", a.v, 2));
  set_contiguous_kv(&prm, a.k, a.v, /*token_dim=*/0, /*head_dim=*/1);
  return run_requests(op, p.device, *static_cast<const MultiQueryResources*>(p.backend_resources.get()), prm,
                      total_q, batch, ws, stream);
}

// ---------------------------------------------------------- SinglePrefill --

Status keep_single_prefill_kernel(PlanState<SinglePrefill>& p) {
  const auto& d = p.desc;
  auto kernel = find_multi_query_kernel(SinglePrefill::kName, d.dtype, d.dtype, d.head_dim);
  if (!kernel) return kernel.status();
  p.backend_resources = std::make_shared<MultiQueryKernelEntry>(*kernel);
  return Status::ok();
}

Status run_single_prefill(const PlanState<SinglePrefill>& p, const SinglePrefillArgs& a, Workspace, Stream stream) {
  constexpr const char* op = SinglePrefill::kName;
  const auto& d = p.desc;
  const bool nhd = d.layout == KvLayout::NHD;
  const std::int64_t q_len = a.q.shape[0], kv_len = nhd ? a.k.shape[0] : a.k.shape[1];
  if (q_len == 0) return Status::ok();
  const int group = d.num_qo_heads / d.num_kv_heads;
  const int rows = multi_query_shape(d.head_dim).rows;
  const std::int64_t tiles = (q_len * group + rows - 1) / rows;
  if (tiles > 65535 || kv_len > INT32_MAX)
    return Status::unsupported(std::string(op) + ": no CUDA kernel for q_len " + std::to_string(q_len) +
                               " and kv_len " + std::to_string(kv_len) +
                               " (built: up to 65535 tiles of query rows per KV head, kv_len < 2^31)");
  MultiQueryParams prm;
  KVSERVE_TRY(prefill_params(op, {a.q, a.out, a.lse, d.causal, d.attn, d.head_dim}, &prm));
  KVSERVE_TRY(check_16_byte_rows(op, "k", a.k, 2));
  KVSERVE_TRY(check_16_byte_rows(op, "v", a.v, 2));
  set_contiguous_kv(&prm, a.k, a.v, /*token_dim=*/nhd ? 0 : 1, /*head_dim=*/nhd ? 1 : 0);
  prm.num_qo_heads = d.num_qo_heads, prm.num_kv_heads = d.num_kv_heads, prm.group = group;
  prm.rows_per_tile = rows;
  prm.max_items = static_cast<int>(tiles);
  prm.single[0].q_len = static_cast<std::int32_t>(q_len);
  prm.single[0].kv_len = static_cast<std::int32_t>(kv_len);
  prm.single[1].first_tile = static_cast<std::int32_t>(tiles);
  return launch_multi_query_passes(op, p.device, *static_cast<const MultiQueryKernelEntry*>(p.backend_resources.get()),
                                   prm, nullptr, stream);
}

}  // namespace
}  // namespace cuda

template <>
Result<Kernel<BatchPagedPrefill>> cuda_kernel<BatchPagedPrefill>(const BatchPagedPrefillDesc& d, Device device) {
  auto k = cuda::prefill_kernel<BatchPagedPrefill>(
      device, {d.q_dtype, d.kv.dtype, d.kv.head_dim, 0, d.max_batch, d.num_qo_heads, d.kv.num_kv_heads},
      paged_config(d.q_dtype, d.kv) + (d.causal ? " causal" : ""));
  if (!k) return k;
  k->run = cuda::run_paged_prefill;
  k->prepare = cuda::prepare_paged_prefill;
  k->create_resources = cuda::create_paged_prefill_resources;
  return k;
}

template <>
Result<Kernel<BatchRaggedPrefill>> cuda_kernel<BatchRaggedPrefill>(const BatchRaggedPrefillDesc& d, Device device) {
  auto k = cuda::prefill_kernel<BatchRaggedPrefill>(
      device, {d.dtype, d.dtype, d.head_dim, d.head_dim_v, d.max_batch, d.num_qo_heads, d.num_kv_heads},
      "dtype=" + std::string(name_of(d.dtype)) + " d=" + std::to_string(d.head_dim) + (d.causal ? " causal" : ""));
  if (!k) return k;
  k->run = cuda::run_ragged_prefill;
  k->prepare = cuda::prepare_ragged_prefill;
  k->create_resources = cuda::create_ragged_prefill_resources;
  return k;
}

template <>
Result<Kernel<SinglePrefill>> cuda_kernel<SinglePrefill>(const SinglePrefillDesc& d, Device device) {
  auto k = cuda::prefill_kernel<SinglePrefill>(device, {d.dtype, d.dtype, d.head_dim, d.head_dim_v},
                                               "dtype=" + std::string(name_of(d.dtype)) + " d=" +
                                                   std::to_string(d.head_dim) + " layout=" +
                                                   std::string(name_of(d.layout)) + (d.causal ? " causal" : ""));
  if (!k) return k;
  k->run = cuda::run_single_prefill;
  k->create_resources = cuda::keep_single_prefill_kernel;
  return k;
}

}  // namespace kvserve::detail
