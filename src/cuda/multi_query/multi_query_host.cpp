#include "cuda/multi_query/multi_query_host.hpp"

#include <bit>
#include <cmath>
#include <string>

#include "core/check.hpp"
#include "cuda/common/runtime.hpp"

namespace kvserve::detail::cuda {

Status create_multi_query_resources(std::string_view op, Device device, DType q, DType kv, int head_dim,
                                    const std::function<MultiQuerySizing(int sm_count)>& sizing,
                                    std::shared_ptr<void>* resources) {
  auto kernel = find_multi_query_kernel(op, q, kv, head_dim);
  if (!kernel) return kernel.status();
  auto facts = device_facts(device);
  if (!facts) return facts.status();
  auto r = std::make_shared<MultiQueryResources>();
  r->kernel = *kernel;
  r->sizing = sizing(facts->sm_count);
  auto staging = PinnedStaging::create(device, r->sizing.staging_bytes);
  if (!staging) return staging.status();
  r->staging = std::move(*staging);
  *resources = std::move(r);
  return Status::ok();
}

Status stage_schedule(std::string_view op, Device device, MultiQueryResources& r, Workspace ws, Stream stream,
                      const std::function<std::size_t(void* staging)>& build) {
  DeviceScope scope(device);
  KVSERVE_TRY(cuda_status(scope.error(), op, "selecting " + device.to_string()));
  auto buffer = r.staging->acquire(op);
  if (!buffer) return buffer.status();
  return r.staging->copy_to_device(op, ws.data, build(*buffer), stream_of(stream));
}

KernelInfo multi_query_info(std::string_view op, std::string arch, std::string config, bool batch_invariant) {
  KernelInfo info;
  info.backend = Backend::cuda;
  info.arch = std::move(arch);
  info.op = std::string(op);
  info.config = std::move(config);
  info.precision = Precision{DType::f32, DType::f32, /*deterministic=*/true, batch_invariant};
  return info;
}

void set_logit_scales(MultiQueryParams* p, const AttentionParams& attn, int head_dim) {
  const double sm_scale = attn.sm_scale ? *attn.sm_scale : 1.0 / std::sqrt(double(head_dim));
  const double cap = attn.logits_soft_cap, log2e = 1.4426950408889634;
  // Without a cap the scores go to base 2 directly; with one, tanh sees
  // s / cap and the cap carries log2 e.
  p->q_scale = static_cast<float>(cap > 0 ? sm_scale / cap : sm_scale * log2e);
  p->cap_log2 = static_cast<float>(cap > 0 ? cap * log2e : 0.0);
  p->window_left = attn.window_left;
}

void set_paged_pools(MultiQueryParams* p, const PagedKvDesc& kv, const TensorView& k_pages, const TensorView& v_pages) {
  const PoolStrides ks = pool_strides(k_pages, kv.layout), vs = pool_strides(v_pages, kv.layout);
  p->k_pages = k_pages.data, p->v_pages = v_pages.data;
  p->k_stride_page = ks.page, p->k_stride_slot = ks.slot, p->k_stride_head = ks.head;
  p->v_stride_page = vs.page, p->v_stride_slot = vs.slot, p->v_stride_head = vs.head;
  p->page_size = kv.page_size;
  if (const auto ps = static_cast<unsigned>(kv.page_size); std::has_single_bit(ps)) p->page_shift = std::countr_zero(ps);
}

void set_schedule(MultiQueryParams* p, const MultiQuerySizing& z, void* ws) {
  auto* base = static_cast<char*>(ws);
  p->num_qo_heads = z.num_qo_heads, p->num_kv_heads = z.num_kv_heads, p->group = z.group;
  p->num_items = reinterpret_cast<const std::int32_t*>(base);
  p->row_info = reinterpret_cast<const MultiQueryRowInfo*>(base + z.row_info_offset);
  p->items = reinterpret_cast<const MultiQueryItem*>(base + z.items_offset);
  p->max_items = z.max_items;
  p->rows_per_tile = z.shape.rows;
  if (z.max_slots > 0) {
    p->partial_lse = reinterpret_cast<float*>(base + z.partial_lse_offset);
    p->partial_out = reinterpret_cast<float*>(base + z.partial_out_offset);
  }
}

Status use_prefill_requests(std::string_view op, MultiQueryParams* p, std::int64_t max_tiles) {
  if (max_tiles > 65535)
    return Status::unsupported(std::string(op) + ": " + std::to_string(max_tiles) +
                               " tiles of query rows (per KV head), more than the 65535 one launch holds");
  p->requests = reinterpret_cast<const MultiQueryRequest*>(p->items);
  p->items = nullptr;
  p->max_items = static_cast<int>(max_tiles);
  return Status::ok();
}

Status launch_multi_query_passes(std::string_view op, Device device, const MultiQueryKernelEntry& kernel,
                                 const MultiQueryParams& attend, const SlotMergeParams* merge, Stream stream) {
  DeviceScope scope(device);
  KVSERVE_TRY(cuda_status(scope.error(), op, "selecting " + device.to_string()));
  KVSERVE_TRY(cuda_status(static_cast<cudaError_t>(kernel.attend(attend, stream.handle)), op, "attention launch"));
  if (merge == nullptr) return Status::ok();
  return cuda_status(static_cast<cudaError_t>(kernel.merge(*merge, stream.handle)), op, "merge launch");
}

}  // namespace kvserve::detail::cuda
