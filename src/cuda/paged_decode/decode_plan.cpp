// BatchPagedDecode on CUDA: selection from the kernel table, the workspace
// schedule written by prepare(), and the launch in run().
#include <bit>
#include <cmath>
#include <memory>
#include <string>

#include "core/check.hpp"
#include "core/paged_kv_rules.hpp"
#include "cuda/paged_decode/decode_schedule.hpp"
#include "cuda/common/runtime.hpp"
#include "cuda/common/staging.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/kernel_table.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

constexpr const char* kOp = BatchPagedDecode::kName;

struct DecodeResources {
  DecodeKernelEntry kernel;
  DecodeSizing sizing;
  std::unique_ptr<PinnedStaging> staging;
};

const DecodeResources& resources_of(const PlanState<BatchPagedDecode>& p) {
  return *static_cast<const DecodeResources*>(p.backend_resources.get());
}

Status create_decode_resources(PlanState<BatchPagedDecode>& p) {
  auto kernel = find_decode_kernel(kOp, p.desc.q_dtype, p.desc.kv.dtype, p.desc.kv.head_dim);
  if (!kernel) return kernel.status();
  auto facts = device_facts(p.device);
  if (!facts) return facts.status();
  auto r = std::make_shared<DecodeResources>();
  r->kernel = *kernel;
  r->sizing = decode_sizing(p.desc, facts->sm_count);
  auto staging = PinnedStaging::create(p.device, r->sizing.staging_bytes);
  if (!staging) return staging.status();
  r->staging = std::move(*staging);
  p.backend_resources = std::move(r);
  return Status::ok();
}

Status prepare_decode(PlanState<BatchPagedDecode>& p, const PagedKvLengths& host, Workspace ws, Stream stream) {
  auto& r = *static_cast<DecodeResources*>(p.backend_resources.get());
  DeviceScope scope(p.device);
  KVSERVE_TRY(cuda_status(scope.error(), kOp, "selecting " + p.device.to_string()));
  auto buffer = r.staging->acquire(kOp);
  if (!buffer) return buffer.status();
  const int n = build_decode_schedule(r.sizing, p.desc, host, *buffer);
  const DecodeSizing& z = r.sizing;
  KVSERVE_TRY(r.staging->copy_to_device(kOp, ws.data, z.items_offset + sizeof(DecodeWorkItem) * n, stream_of(stream)));
  // The kernels leave the split counters at zero; clearing them here as well
  // recovers from a run that never finished (e.g. an aborted graph).
  return cuda_status(cudaMemsetAsync(static_cast<char*>(ws.data) + z.counters_offset, 0,
                                     z.partial_lse_offset - z.counters_offset, stream_of(stream)),
                     kOp, "clearing the split counters");
}

Status run_decode(const PlanState<BatchPagedDecode>& p, const BatchPagedDecodeArgs& a, Workspace ws, Stream stream) {
  const auto& d = p.desc;
  const DecodeResources& r = resources_of(p);
  const DecodeSizing& z = r.sizing;
  if (a.q.shape[0] == 0) return Status::ok();
  KVSERVE_TRY(check_16_byte_rows(kOp, "q", a.q, 2));
  KVSERVE_TRY(check_16_byte_rows(kOp, "out", a.out, 2));
  KVSERVE_TRY(check_16_byte_rows(kOp, "kv.k_pages", a.kv.k_pages, 3));
  KVSERVE_TRY(check_16_byte_rows(kOp, "kv.v_pages", a.kv.v_pages, 3));

  DecodeParams prm;
  prm.q = a.q.data;
  prm.q_stride_b = a.q.strides[0], prm.q_stride_h = a.q.strides[1];
  prm.out = a.out.data;
  prm.out_stride_b = a.out.strides[0], prm.out_stride_h = a.out.strides[1];
  if (a.lse.defined()) {
    prm.lse = a.lse.ptr<float>();
    prm.lse_stride_b = a.lse.strides[0], prm.lse_stride_h = a.lse.strides[1];
  }
  const PoolStrides ks = pool_strides(a.kv.k_pages, d.kv.layout), vs = pool_strides(a.kv.v_pages, d.kv.layout);
  prm.k_pages = a.kv.k_pages.data, prm.v_pages = a.kv.v_pages.data;
  prm.k_stride_page = ks.page, prm.k_stride_slot = ks.slot, prm.k_stride_head = ks.head;
  prm.v_stride_page = vs.page, prm.v_stride_slot = vs.slot, prm.v_stride_head = vs.head;
  prm.indptr = a.kv.indptr.ptr<const std::int32_t>();
  prm.indices = a.kv.indices.ptr<const std::int32_t>();
  prm.page_size = d.kv.page_size;
  if (const auto ps = static_cast<unsigned>(d.kv.page_size); std::has_single_bit(ps)) prm.page_shift = std::countr_zero(ps);
  prm.num_qo_heads = z.num_qo_heads, prm.num_kv_heads = z.num_kv_heads;
  prm.group = z.group, prm.heads_per_block = z.heads_per_block, prm.token_slots = z.token_slots;
  const double sm_scale = d.attn.sm_scale ? *d.attn.sm_scale : 1.0 / std::sqrt(double(d.kv.head_dim));
  const double cap = d.attn.logits_soft_cap;
  // Without a cap logits are taken in base 2 directly (q * sm_scale * log2 e);
  // with one, tanh sees s / cap and the cap carries the log2 e.
  prm.q_scale = static_cast<float>(cap > 0 ? sm_scale / cap : sm_scale * 1.4426950408889634);
  prm.cap_log2 = static_cast<float>(cap > 0 ? cap * 1.4426950408889634 : 0.0);

  auto* base = static_cast<char*>(ws.data);
  prm.num_items = reinterpret_cast<const std::int32_t*>(base);
  prm.items = reinterpret_cast<const DecodeWorkItem*>(base + z.items_offset);
  if (is_fp8(d.kv.dtype)) {
    prm.k_scale = reinterpret_cast<const float*>(base + z.scales_offset);
    prm.v_scale = prm.k_scale + z.num_kv_heads;
  }
  prm.split_counters = reinterpret_cast<unsigned*>(base + z.counters_offset);
  prm.partial_lse = reinterpret_cast<float*>(base + z.partial_lse_offset);
  prm.partial_out = reinterpret_cast<float*>(base + z.partial_out_offset);
  prm.max_items = z.max_items;
  prm.head_chunks = z.head_chunks;

  DeviceScope scope(p.device);
  KVSERVE_TRY(cuda_status(scope.error(), kOp, "selecting " + p.device.to_string()));
  return cuda_status(static_cast<cudaError_t>(r.kernel.launch(prm, stream.handle)), kOp, "kernel launch");
}

}  // namespace
}  // namespace cuda

template <>
Result<Kernel<BatchPagedDecode>> cuda_kernel<BatchPagedDecode>(const BatchPagedDecodeDesc& d, Device device) {
  auto entry = cuda::find_decode_kernel(BatchPagedDecode::kName, d.q_dtype, d.kv.dtype, d.kv.head_dim);
  if (!entry) return entry.status();
  auto facts = cuda::device_facts(device);
  if (!facts) return facts.status();
  const cuda::DecodeSizing z = cuda::decode_sizing(d, facts->sm_count);
  if (z.max_items > 65535)  // grid.y
    return Status::unsupported(std::string(BatchPagedDecode::kName) + ": max_batch " + std::to_string(d.max_batch) +
                               " needs " + std::to_string(z.max_items) +
                               " work items, more than the 65535 one CUDA launch holds");
  Kernel<BatchPagedDecode> k;
  k.info.backend = Backend::cuda;
  k.info.arch = facts->arch;
  k.info.op = BatchPagedDecode::kName;
  k.info.config = paged_config(d.q_dtype, d.kv) + " threads=" + std::to_string(z.shape.threads) +
                  " tile=" + std::to_string(z.shape.tile_tokens) + "x" + std::to_string(z.shape.stages) +
                  " heads_per_block=" + std::to_string(z.heads_per_block) +
                  (z.split_tokens > 0 ? " split=fixed:" + std::to_string(z.split_tokens) : " split=auto");
  // fp32 products and sums; the schedule and the merge order depend only on
  // the lengths (so runs repeat bit for bit), and with a fixed split only on
  // the request's own length.
  k.info.precision = Precision{DType::f32, DType::f32, /*deterministic=*/true,
                               /*batch_invariant=*/d.kv_split_tokens > 0};
  k.workspace_bytes = z.workspace_bytes;
  k.run = cuda::run_decode;
  k.prepare = cuda::prepare_decode;
  k.create_resources = cuda::create_decode_resources;
  return k;
}

}  // namespace kvserve::detail
