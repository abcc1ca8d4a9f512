// PagedKvAppend on CUDA: selection from the kernel table and the launch. No
// workspace, no prepare: run() is graph-capturable as is.
#include <bit>
#include <string>

#include "core/check.hpp"
#include "cuda/common/runtime.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/kernel_table.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

constexpr const char* kOp = PagedKvAppend::kName;

struct AppendResources {
  AppendLaunch launch = nullptr;
  float k_inv_scale[kAppendMaxScaledHeads] = {};
  float v_inv_scale[kAppendMaxScaledHeads] = {};
};

Status create_append_resources(PlanState<PagedKvAppend>& p) {
  const auto& d = p.desc;
  auto entry = find_append_kernel(kOp, d.dtype, d.kv.dtype);
  if (!entry) return entry.status();
  auto r = std::make_shared<AppendResources>();
  r->launch = entry->launch;
  for (int h = 0; h < d.kv.num_kv_heads && h < kAppendMaxScaledHeads; ++h) {
    r->k_inv_scale[h] = 1.f / d.kv.k_scale_of(h);
    r->v_inv_scale[h] = 1.f / d.kv.v_scale_of(h);
  }
  p.backend_resources = std::move(r);
  return Status::ok();
}

Status run_append(const PlanState<PagedKvAppend>& p, const PagedKvAppendArgs& a, Workspace, Stream stream) {
  const auto& d = p.desc;
  const auto& r = *static_cast<const AppendResources*>(p.backend_resources.get());
  KVSERVE_TRY(check_16_byte_rows(kOp, "k", a.k, 2));
  KVSERVE_TRY(check_16_byte_rows(kOp, "v", a.v, 2));
  KVSERVE_TRY(check_16_byte_rows(kOp, "kv.k_pages", a.kv.k_pages, 3));
  KVSERVE_TRY(check_16_byte_rows(kOp, "kv.v_pages", a.kv.v_pages, 3));
  AppendParams prm;
  prm.rows = a.k.shape[0];
  prm.num_kv_heads = d.kv.num_kv_heads, prm.head_dim = d.kv.head_dim, prm.page_size = d.kv.page_size;
  if (const auto ps = static_cast<unsigned>(d.kv.page_size); std::has_single_bit(ps)) prm.page_shift = std::countr_zero(ps);
  prm.batch = a.kv.indptr.shape[0] - 1;
  prm.k = a.k.data, prm.v = a.v.data;
  prm.k_stride_n = a.k.strides[0], prm.k_stride_h = a.k.strides[1];
  prm.v_stride_n = a.v.strides[0], prm.v_stride_h = a.v.strides[1];
  const PoolStrides ks = pool_strides(a.kv.k_pages, d.kv.layout), vs = pool_strides(a.kv.v_pages, d.kv.layout);
  prm.k_pages = a.kv.k_pages.data, prm.v_pages = a.kv.v_pages.data;
  prm.kp_stride_page = ks.page, prm.kp_stride_slot = ks.slot, prm.kp_stride_head = ks.head;
  prm.vp_stride_page = vs.page, prm.vp_stride_slot = vs.slot, prm.vp_stride_head = vs.head;
  prm.indptr = a.kv.indptr.ptr<const std::int32_t>();
  prm.indices = a.kv.indices.ptr<const std::int32_t>();
  prm.last_page_len = a.kv.last_page_len.ptr<const std::int32_t>();
  if (d.mode == AppendMode::ragged) {
    prm.batch_indices = a.batch_indices.ptr<const std::int32_t>();
    prm.positions = a.positions.ptr<const std::int32_t>();
  }
  std::copy(std::begin(r.k_inv_scale), std::end(r.k_inv_scale), prm.k_inv_scale);
  std::copy(std::begin(r.v_inv_scale), std::end(r.v_inv_scale), prm.v_inv_scale);
  DeviceScope scope(p.device);
  KVSERVE_TRY(cuda_status(scope.error(), kOp, "selecting " + p.device.to_string()));
  return cuda_status(static_cast<cudaError_t>(r.launch(prm, stream.handle)), kOp, "kernel launch");
}

}  // namespace
}  // namespace cuda

template <>
Result<Kernel<PagedKvAppend>> cuda_kernel<PagedKvAppend>(const PagedKvAppendDesc& d, Device device) {
  auto entry = cuda::find_append_kernel(PagedKvAppend::kName, d.dtype, d.kv.dtype);
  if (!entry) return entry.status();
  const bool per_head_scales = d.kv.k_scale.size() > 1 || d.kv.v_scale.size() > 1;
  if (per_head_scales && d.kv.num_kv_heads > cuda::kAppendMaxScaledHeads)
    return Status::unsupported(std::string(PagedKvAppend::kName) + ": no CUDA kernel for per-head fp8 scales over " +
                               std::to_string(d.kv.num_kv_heads) + " KV heads (built: up to " +
                               std::to_string(cuda::kAppendMaxScaledHeads) + ")");
  auto facts = cuda::device_facts(device);
  if (!facts) return facts.status();
  Kernel<PagedKvAppend> k;
  k.info.backend = Backend::cuda;
  k.info.arch = facts->arch;
  k.info.op = PagedKvAppend::kName;
  k.info.config = "rows=" + std::string(name_of(d.dtype)) + " pool=" + std::string(name_of(d.kv.dtype)) +
                  " mode=" + std::string(name_of(d.mode)) + " layout=" + std::string(name_of(d.kv.layout));
  k.info.precision = Precision{DType::f32, DType::f32, true, true};
  k.run = cuda::run_append;
  k.create_resources = cuda::create_append_resources;
  return k;
}

}  // namespace kvserve::detail
