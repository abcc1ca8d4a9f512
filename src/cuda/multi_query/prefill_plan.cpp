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
#include "cuda/common/cuda_plan.hpp"
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
  prm->pool.k = k.data, prm->pool.v = v.data;
  prm->pool.k_stride_slot = k.strides[token_dim], prm->pool.k_stride_head = k.strides[head_dim];
  prm->pool.v_stride_slot = v.strides[token_dim], prm->pool.v_stride_head = v.strides[head_dim];
  prm->indices[0] = nullptr;
}

// prepare() of the batched ops: request b's queries are rows qo_indptr[b]..
// of q, its keys `kv[b]`.
Status prepare_requests(std::string_view op, Device device, ScheduledMultiQuery& s, std::span<const std::int32_t> qo_indptr,
                        std::span<const KvSpan> kv, Workspace ws, Stream stream) {
  return stage_schedule(op, device, *s.staging, ws, stream, [&](void* staging) -> Result<std::size_t> {
    return build_prefill_schedule(s.sizing, qo_indptr, kv, staging);
  });
}

// run() of the batched ops once `prm` holds the query side and K/V.
Status run_requests(std::string_view op, Device device, const ScheduledMultiQuery& s, MultiQueryParams& prm,
                    std::int64_t total_q, std::int64_t batch, Workspace ws, Stream stream) {
  set_schedule(&prm, s.sizing, ws.data);
  KVSERVE_TRY(use_prefill_requests(op, &prm, prefill_max_tiles(s.sizing, total_q, batch)));
  return launch_multi_query_passes(op, device, s.launch, prm, nullptr, stream);
}

// The row every prefill op looks up, with V rows as wide as K's (what the
// kernels serve; head_dim_v 0 means head_dim).
Result<MultiQueryKernel> prefill_kernel(std::string_view op, DType q, DType kv, int head_dim, int head_dim_v,
                                        const DeviceFacts& facts) {
  auto kernel = find_multi_query(op, q, kv, head_dim, facts);
  if (!kernel) return kernel.status();
  if (head_dim_v != 0 && head_dim_v != head_dim)
    return no_kernel(op, "head_dim_v " + std::to_string(head_dim_v) + " != head_dim " + std::to_string(head_dim),
                     "head_dim_v = head_dim");
  return kernel;
}

// The batched ops: the kernel, and the sizing of the request records.
Result<ScheduledMultiQuery> select_requests(std::string_view op, DType q, DType kv, int head_dim, int head_dim_v,
                                            int max_batch, int num_qo_heads, int num_kv_heads,
                                            const DeviceFacts& facts) {
  auto kernel = prefill_kernel(op, q, kv, head_dim, head_dim_v, facts);
  if (!kernel) return kernel.status();
  return ScheduledMultiQuery{
      *kernel, prefill_sizing(max_batch, num_qo_heads, num_kv_heads, head_dim, facts.sm_count, kernel->shape),
      nullptr};
}

// Rows never split across blocks, so every prefill row is batch invariant.
struct BatchedPrefillTraits : ScheduledMultiQueryTraits {
  static Precision precision(const auto&) { return precision_of(/*batch_invariant=*/true); }
  static Status create(Selected& s, const auto&, Device device) { return create_staging(s, device); }
};

// ------------------------------------------------------ BatchPagedPrefill --

struct BatchPagedPrefillTraits : BatchedPrefillTraits {
  using Op = BatchPagedPrefill;

  static Result<Selected> select(const BatchPagedPrefillDesc& d, const DeviceFacts& facts) {
    return select_requests(Op::kName, d.q_dtype, d.kv.dtype, d.kv.head_dim, 0, d.max_batch, d.num_qo_heads,
                           d.kv.num_kv_heads, facts);
  }
  static std::string config(const BatchPagedPrefillDesc& d, const Selected& s) {
    return paged_config(d.q_dtype, d.kv) + (d.causal ? " causal" : "") + kernel_text(s.launch);
  }

  static Status prepare(Selected& s, const BatchPagedPrefillDesc& d, Device device, const PagedPrefillLengths& host,
                        Workspace ws, Stream stream) {
    const std::size_t batch = host.qo_indptr.size() - 1;
    std::vector<KvSpan> kv(batch);
    for (std::size_t b = 0; b < batch; ++b)
      kv[b] = {host.kv.indptr[b], paged_kv_len(host.kv.indptr.data(), host.kv.last_page_len.data(),
                                               static_cast<std::int64_t>(b), d.kv.page_size)};
    return prepare_requests(Op::kName, device, s, host.qo_indptr, kv, ws, stream);
  }

  static Status run(const Selected& s, const BatchPagedPrefillDesc& d, Device device, const BatchPagedPrefillArgs& a,
                    Workspace ws, Stream stream) {
    constexpr const char* op = Op::kName;
    const std::int64_t total_q = a.q.shape[0], batch = a.qo_indptr.shape[0] - 1;
    if (total_q == 0 || batch == 0) return Status::ok();
    MultiQueryParams prm;
    KVSERVE_TRY(prefill_params(op, {a.q, a.out, a.lse, d.causal, d.attn, d.kv.head_dim}, &prm));
    KVSERVE_TRY(check_16_byte_rows(op, "kv.k_pages", a.kv.k_pages, 3));
    KVSERVE_TRY(check_16_byte_rows(op, "kv.v_pages", a.kv.v_pages, 3));
    set_paged_pools(&prm, d.kv, a.kv.k_pages, a.kv.v_pages);
    prm.indices[0] = a.kv.indices.ptr<const std::int32_t>();
    return run_requests(op, device, s, prm, total_q, batch, ws, stream);
  }
};

// ----------------------------------------------------- BatchRaggedPrefill --

struct BatchRaggedPrefillTraits : BatchedPrefillTraits {
  using Op = BatchRaggedPrefill;

  static Result<Selected> select(const BatchRaggedPrefillDesc& d, const DeviceFacts& facts) {
    return select_requests(Op::kName, d.dtype, d.dtype, d.head_dim, d.head_dim_v, d.max_batch, d.num_qo_heads,
                           d.num_kv_heads, facts);
  }
  static std::string config(const BatchRaggedPrefillDesc& d, const Selected& s) {
    return "dtype=" + std::string(name_of(d.dtype)) + " d=" + std::to_string(d.head_dim) +
           (d.causal ? " causal" : "") + kernel_text(s.launch);
  }

  static Status prepare(Selected& s, const BatchRaggedPrefillDesc&, Device device, const RaggedLengths& host,
                        Workspace ws, Stream stream) {
    const std::size_t batch = host.qo_indptr.size() - 1;
    std::vector<KvSpan> kv(batch);
    for (std::size_t b = 0; b < batch; ++b) kv[b] = {host.kv_indptr[b], host.kv_indptr[b + 1] - host.kv_indptr[b]};
    return prepare_requests(Op::kName, device, s, host.qo_indptr, kv, ws, stream);
  }

  static Status run(const Selected& s, const BatchRaggedPrefillDesc& d, Device device,
                    const BatchRaggedPrefillArgs& a, Workspace ws, Stream stream) {
    constexpr const char* op = Op::kName;
    const std::int64_t total_q = a.q.shape[0], batch = a.qo_indptr.shape[0] - 1;
    if (total_q == 0 || batch == 0) return Status::ok();
    MultiQueryParams prm;
    KVSERVE_TRY(prefill_params(op, {a.q, a.out, a.lse, d.causal, d.attn, d.head_dim}, &prm));
    KVSERVE_TRY(check_16_byte_rows(op, "k", a.k, 2));
    KVSERVE_TRY(check_16_byte_rows(op, "v", a.v, 2));
    set_contiguous_kv(&prm, a.k, a.v, /*token_dim=*/0, /*head_dim=*/1);
    return run_requests(op, device, s, prm, total_q, batch, ws, stream);
  }
};

// ---------------------------------------------------------- SinglePrefill --

struct SinglePrefillTraits {
  using Op = SinglePrefill;
  struct Selected {
    MultiQueryKernel launch;
  };

  static Result<Selected> select(const SinglePrefillDesc& d, const DeviceFacts& facts) {
    auto launch = prefill_kernel(Op::kName, d.dtype, d.dtype, d.head_dim, d.head_dim_v, facts);
    if (!launch) return launch.status();
    return Selected{*launch};
  }
  static std::string config(const SinglePrefillDesc& d, const Selected& s) {
    return "dtype=" + std::string(name_of(d.dtype)) + " d=" + std::to_string(d.head_dim) +
           " layout=" + std::string(name_of(d.layout)) + (d.causal ? " causal" : "") + kernel_text(s.launch);
  }
  static Precision precision(const SinglePrefillDesc&) {
    return ScheduledMultiQueryTraits::precision_of(/*batch_invariant=*/true);
  }

  static Status run(const Selected& s, const SinglePrefillDesc& d, Device device, const SinglePrefillArgs& a,
                    Workspace, Stream stream) {
    constexpr const char* op = Op::kName;
    const bool nhd = d.layout == KvLayout::NHD;
    const std::int64_t q_len = a.q.shape[0], kv_len = nhd ? a.k.shape[0] : a.k.shape[1];
    if (q_len == 0) return Status::ok();
    const int group = d.num_qo_heads / d.num_kv_heads;
    const int rows = s.launch.shape.rows;
    const std::int64_t tiles = (q_len * group + rows - 1) / rows;
    if (tiles > 65535 || kv_len > INT32_MAX)
      return no_kernel(op, "q_len " + std::to_string(q_len) + " and kv_len " + std::to_string(kv_len),
                       "up to 65535 tiles of query rows per KV head, kv_len < 2^31");
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
    return launch_multi_query_passes(op, device, s.launch, prm, nullptr, stream);
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(BatchPagedPrefill, BatchPagedPrefillTraits)
KVSERVE_CUDA_KERNEL(BatchRaggedPrefill, BatchRaggedPrefillTraits)
KVSERVE_CUDA_KERNEL(SinglePrefill, SinglePrefillTraits)

}  // namespace kvserve::detail
