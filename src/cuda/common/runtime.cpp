#include "cuda/common/runtime.hpp"

#include <cmath>

#include "core/check.hpp"

namespace kvserve::detail::cuda {

Status cuda_status(cudaError_t e, std::string_view op, std::string_view what) {
  if (e == cudaSuccess) return Status::ok();
  return Status::cuda_error(std::string(op) + ": " + std::string(what) + ": " + cudaGetErrorName(e) + " (" +
                            cudaGetErrorString(e) + ")");
}

DeviceScope::DeviceScope(Device device) {
  int current = -1;
  error_ = cudaGetDevice(&current);
  if (error_ != cudaSuccess || current == device.ordinal) return;  // nothing to switch or restore
  error_ = cudaSetDevice(device.ordinal);
  if (error_ == cudaSuccess) previous_ = current;
}

DeviceScope::~DeviceScope() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

Result<DeviceFacts> device_facts(Device device) {
  DeviceFacts f;
  const int d = device.ordinal;
  KVSERVE_TRY(cuda_status(cudaDeviceGetAttribute(&f.sm_count, cudaDevAttrMultiProcessorCount, d), "device",
                          "multiprocessor count"));
  KVSERVE_TRY(cuda_status(cudaDeviceGetAttribute(&f.major, cudaDevAttrComputeCapabilityMajor, d), "device",
                          "compute capability"));
  KVSERVE_TRY(cuda_status(cudaDeviceGetAttribute(&f.minor, cudaDevAttrComputeCapabilityMinor, d), "device",
                          "compute capability"));
  f.arch = "sm_" + std::to_string(f.major * 10 + f.minor);
  return f;
}

PagedPool paged_pool(const PagedKvDesc& kv, const TensorView& k_pages, const TensorView& v_pages) {
  const bool nhd = kv.layout == KvLayout::NHD;
  const auto& ks = k_pages.strides;
  const auto& vs = v_pages.strides;
  PagedPool pool;
  pool.k = k_pages.data, pool.v = v_pages.data;
  pool.k_stride_page = ks[0], pool.k_stride_slot = nhd ? ks[1] : ks[2], pool.k_stride_head = nhd ? ks[2] : ks[1];
  pool.v_stride_page = vs[0], pool.v_stride_slot = nhd ? vs[1] : vs[2], pool.v_stride_head = nhd ? vs[2] : vs[1];
  pool.set_page_size(kv.page_size);
  return pool;
}

LogitScales logit_scales(const AttentionParams& attn, int head_dim) {
  const double sm_scale = attn.sm_scale ? *attn.sm_scale : 1.0 / std::sqrt(double(head_dim));
  const double cap = attn.logits_soft_cap, log2e = 1.4426950408889634;
  return {static_cast<float>(cap > 0 ? sm_scale / cap : sm_scale * log2e),
          static_cast<float>(cap > 0 ? cap * log2e : 0.0)};
}

Status check_16_byte_rows(std::string_view op, std::string_view name, const TensorView& t, int strided_dims) {
  if (!t.defined()) return Status::ok();
  const auto elem = static_cast<std::int64_t>(size_of(t.dtype));
  bool ok = aligned(t.data, 16);
  for (int i = 0; i < strided_dims; ++i) ok = ok && (t.strides[i] * elem) % 16 == 0;
  if (ok) return Status::ok();
  return invalid_arg(op, name, "16-byte aligned data and strides (the CUDA kernel moves rows 16 bytes at a time)",
                     "data " + std::to_string(reinterpret_cast<std::uintptr_t>(t.data) % 16) +
                         " bytes past 16-byte alignment, strides " + t.strides_string());
}

}  // namespace kvserve::detail::cuda
