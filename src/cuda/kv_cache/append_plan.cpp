// PagedKvAppend on CUDA: the row for (row dtype, pool dtype), and the launch.
// No workspace, no prepare: run() is graph-capturable as is.
#include <algorithm>
#include <string>

#include "core/check.hpp"
#include "cuda/common/cuda_plan.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/kv_cache/append_params.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

const LaunchTable<AppendLaunch> kAppendLaunchers{append_launchers()};

struct PagedKvAppendTraits {
  using Op = PagedKvAppend;
  struct Selected {
    AppendLaunch launch;
    // fp8 pools: 1 / scale per head, computed once.
    float k_inv_scale[kAppendMaxScaledHeads] = {};
    float v_inv_scale[kAppendMaxScaledHeads] = {};
  };

  static Result<Selected> select(const PagedKvAppendDesc& d, const DeviceFacts&) {
    auto row = find_row(Op::kName, Family::paged_append, {d.dtype, d.kv.dtype, d.kv.head_dim});
    if (!row) return row.status();
    const bool per_head_scales = d.kv.k_scale.size() > 1 || d.kv.v_scale.size() > 1;
    if (per_head_scales && d.kv.num_kv_heads > kAppendMaxScaledHeads)
      return no_kernel(Op::kName, "per-head fp8 scales over " + std::to_string(d.kv.num_kv_heads) + " KV heads",
                       "up to " + std::to_string(kAppendMaxScaledHeads));
    Selected s{kAppendLaunchers[*row]};
    for (int h = 0; h < d.kv.num_kv_heads && h < kAppendMaxScaledHeads; ++h) {
      s.k_inv_scale[h] = 1.f / d.kv.k_scale_of(h);
      s.v_inv_scale[h] = 1.f / d.kv.v_scale_of(h);
    }
    return s;
  }
  static std::string config(const PagedKvAppendDesc& d, const Selected&) {
    return "rows=" + std::string(name_of(d.dtype)) + " pool=" + std::string(name_of(d.kv.dtype)) +
           " mode=" + std::string(name_of(d.mode)) + " layout=" + std::string(name_of(d.kv.layout));
  }
  static Precision precision(const PagedKvAppendDesc&) { return {DType::f32, DType::f32, true, true}; }

  static Status run(const Selected& s, const PagedKvAppendDesc& d, Device device, const PagedKvAppendArgs& a,
                    Workspace, Stream stream) {
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "k", a.k, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "v", a.v, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "kv.k_pages", a.kv.k_pages, 3));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "kv.v_pages", a.kv.v_pages, 3));
    AppendParams prm;
    prm.rows = a.k.shape[0];
    prm.num_kv_heads = d.kv.num_kv_heads, prm.head_dim = d.kv.head_dim;
    prm.batch = a.kv.indptr.shape[0] - 1;
    prm.k = a.k.data, prm.v = a.v.data;
    prm.k_stride_n = a.k.strides[0], prm.k_stride_h = a.k.strides[1];
    prm.v_stride_n = a.v.strides[0], prm.v_stride_h = a.v.strides[1];
    prm.pool = paged_pool(d.kv, a.kv.k_pages, a.kv.v_pages);
    prm.indptr = a.kv.indptr.ptr<const std::int32_t>();
    prm.indices = a.kv.indices.ptr<const std::int32_t>();
    prm.last_page_len = a.kv.last_page_len.ptr<const std::int32_t>();
    if (d.mode == AppendMode::ragged) {
      prm.batch_indices = a.batch_indices.ptr<const std::int32_t>();
      prm.positions = a.positions.ptr<const std::int32_t>();
    }
    std::copy(std::begin(s.k_inv_scale), std::end(s.k_inv_scale), prm.k_inv_scale);
    std::copy(std::begin(s.v_inv_scale), std::end(s.v_inv_scale), prm.v_inv_scale);
    return launch_on(device, Op::kName, [&] { return s.launch(prm, stream.handle); });
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(PagedKvAppend, PagedKvAppendTraits)

}  // namespace kvserve::detail
