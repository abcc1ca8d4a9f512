#include "cuda/multi_query/multi_query_host.hpp"

#include <bit>
#include <cmath>
#include <cstdlib>
#include <string>

#include "core/check.hpp"
#include "cuda/common/runtime.hpp"

namespace kvserve::detail::cuda {

namespace {
const LaunchTable<MultiQueryLaunch> kMultiQueryLaunchers{multi_query_launchers_f16(), multi_query_launchers_bf16()};
}  // namespace

Result<MultiQueryKernel> find_multi_query(std::string_view op, DType q, DType kv, int head_dim,
                                          const DeviceFacts& facts) {
  auto row = find_row(op, Family::multi_query, {q, kv, head_dim});
  if (!row) return row.status();
  const MultiQueryLaunch& launch = kMultiQueryLaunchers[*row];
  static const bool sm90_built = multi_query_sm90_built();
  const char* choice = std::getenv("KVSERVE_MULTI_QUERY_KERNEL");
  const bool keep_mma_sync = choice != nullptr && std::string_view(choice) == "mma_sync";
  if (facts.major == 9 && facts.minor == 0 && sm90_built && !keep_mma_sync)
    return MultiQueryKernel{launch.attend_sm90, launch.merge, multi_query_shape_sm90(head_dim), true};
  return MultiQueryKernel{launch.attend, launch.merge, multi_query_shape(head_dim), false};
}

std::string kernel_text(const MultiQueryKernel& k) {
  return " rows=" + std::to_string(k.shape.rows) + " tile=" + std::to_string(k.shape.tile_tokens) + "x" +
         std::to_string(k.shape.stages) + (k.sm90 ? " wgmma" : " mma_sync");
}

void set_logit_scales(MultiQueryParams* p, const AttentionParams& attn, int head_dim) {
  const LogitScales scales = logit_scales(attn, head_dim);
  p->q_scale = scales.q_scale, p->cap_log2 = scales.cap_log2;
  p->window_left = attn.window_left;
}

void set_paged_pools(MultiQueryParams* p, const PagedKvDesc& kv, const TensorView& k_pages, const TensorView& v_pages) {
  p->pool = paged_pool(kv, k_pages, v_pages);
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
    return no_kernel(op, std::to_string(max_tiles) + " tiles of query rows per KV head",
                     "up to the 65535 one launch holds");
  p->requests = reinterpret_cast<const MultiQueryRequest*>(p->items);
  p->items = nullptr;
  p->max_items = static_cast<int>(max_tiles);
  return Status::ok();
}

Status launch_multi_query_passes(std::string_view op, Device device, const MultiQueryKernel& launch,
                                 const MultiQueryParams& attend, const SlotMergeParams* merge, Stream stream) {
  return on_device(device, op, [&]() -> Status {
    KVSERVE_TRY(cuda_status(static_cast<cudaError_t>(launch.attend(attend, stream.handle)), op, "attention launch"));
    if (merge == nullptr) return Status::ok();
    return cuda_status(static_cast<cudaError_t>(launch.merge(*merge, stream.handle)), op, "merge launch");
  });
}

}  // namespace kvserve::detail::cuda
