// The three append ops on CUDA (one kernel, append_params.hpp): the row for
// the dtypes, and the launch. No workspace, no prepare: run() is
// graph-capturable as is.
#include <algorithm>
#include <string>

#include "core/check.hpp"
#include "cuda/common/cuda_plan.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/kv_cache/append_params.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

const LaunchTable<AppendLaunch> kAppendLaunchers{paged_append_launchers(), mla_append_launchers(),
                                                  cache_append_launchers()};

// fp32 where an fp8 pool quantises; rows are otherwise copied unchanged.
constexpr Precision kCopyPrecision{DType::f32, DType::f32, true, true};

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
  static Precision precision(const PagedKvAppendDesc&) { return kCopyPrecision; }

  static Status run(const Selected& s, const PagedKvAppendDesc& d, Device device, const PagedKvAppendArgs& a,
                    Workspace, Stream stream) {
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "k", a.k, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "v", a.v, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "kv.k_pages", a.kv.k_pages, 3));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "kv.v_pages", a.kv.v_pages, 3));
    AppendParams prm;
    prm.slots = d.mode == AppendMode::ragged ? AppendSlots::paged_ragged : AppendSlots::paged_last;
    prm.rows = a.k.shape[0];
    prm.num_kv_heads = d.kv.num_kv_heads, prm.k_dim = prm.v_dim = d.kv.head_dim;
    prm.batch = a.kv.indptr.shape[0] - 1;
    prm.k = a.k.data, prm.v = a.v.data;
    prm.k_stride_n = a.k.strides[0], prm.k_stride_h = a.k.strides[1];
    prm.v_stride_n = a.v.strides[0], prm.v_stride_h = a.v.strides[1];
    prm.pool = paged_pool(d.kv, a.kv.k_pages, a.kv.v_pages);
    prm.num_pages = d.kv.num_pages;
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


struct PagedMlaAppendTraits {
  using Op = PagedMlaAppend;
  struct Selected {
    AppendLaunch launch;
  };

  static Result<Selected> select(const PagedMlaDesc& d, const DeviceFacts&) {
    auto row = find_row(Op::kName, Family::mla_append, {d.dtype, d.dtype, kAnyHeadDim});
    if (!row) return row.status();
    const int chunk = 16 / static_cast<int>(size_of(d.dtype));
    if (d.ckv_dim % chunk != 0 || d.kpe_dim % chunk != 0)
      return no_kernel(Op::kName,
                       "ckv_dim=" + std::to_string(d.ckv_dim) + " kpe_dim=" + std::to_string(d.kpe_dim) + " in " +
                           std::string(name_of(d.dtype)),
                       "widths multiples of " + std::to_string(chunk) + " elements (16 bytes)");
    return Selected{kAppendLaunchers[*row]};
  }
  static std::string config(const PagedMlaDesc& d, const Selected&) {
    return "dtype=" + std::string(name_of(d.dtype)) + " ckv=" + std::to_string(d.ckv_dim) +
           " kpe=" + std::to_string(d.kpe_dim);
  }
  static Precision precision(const PagedMlaDesc&) { return kCopyPrecision; }

  static Status run(const Selected& s, const PagedMlaDesc& d, Device device, const PagedMlaAppendArgs& a, Workspace,
                    Stream stream) {
    const PagedMlaCache& c = a.cache;
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "ckv", a.ckv, 1));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "kpe", a.kpe, 1));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "cache.ckv_pages", c.ckv_pages, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "cache.kpe_pages", c.kpe_pages, 2));
    // One "head" whose K side is the ckv row and V side the kpe row.
    AppendParams prm;
    prm.slots = AppendSlots::paged_ragged;
    prm.rows = a.ckv.shape[0];
    prm.num_kv_heads = 1, prm.k_dim = d.ckv_dim, prm.v_dim = d.kpe_dim;
    prm.batch = c.indptr.shape[0] - 1;
    prm.k = a.ckv.data, prm.v = a.kpe.data;
    prm.k_stride_n = a.ckv.strides[0], prm.v_stride_n = a.kpe.strides[0];
    prm.pool.k = c.ckv_pages.data, prm.pool.v = c.kpe_pages.data;
    prm.pool.k_stride_page = c.ckv_pages.strides[0], prm.pool.k_stride_slot = c.ckv_pages.strides[1];
    prm.pool.v_stride_page = c.kpe_pages.strides[0], prm.pool.v_stride_slot = c.kpe_pages.strides[1];
    prm.pool.set_page_size(d.page_size);
    prm.num_pages = d.num_pages;
    prm.indptr = c.indptr.ptr<const std::int32_t>();
    prm.indices = c.indices.ptr<const std::int32_t>();
    prm.last_page_len = c.last_page_len.ptr<const std::int32_t>();
    prm.batch_indices = a.batch_indices.ptr<const std::int32_t>();
    prm.positions = a.positions.ptr<const std::int32_t>();
    return launch_on(device, Op::kName, [&] { return s.launch(prm, stream.handle); });
  }
};

struct KvCacheAppendTraits {
  using Op = KvCacheAppend;
  struct Selected {
    AppendLaunch launch;
  };

  static Result<Selected> select(const KvCacheAppendDesc& d, const DeviceFacts&) {
    auto row = find_row(Op::kName, Family::cache_append, {d.dtype, d.dtype, d.head_dim});
    if (!row) return row.status();
    return Selected{kAppendLaunchers[*row]};
  }
  static std::string config(const KvCacheAppendDesc& d, const Selected&) {
    return "dtype=" + std::string(name_of(d.dtype)) + " d=" + std::to_string(d.head_dim);
  }
  static Precision precision(const KvCacheAppendDesc&) { return kCopyPrecision; }

  static Status run(const Selected& s, const KvCacheAppendDesc& d, Device device, const KvCacheAppendArgs& a,
                    Workspace, Stream stream) {
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "k", a.k, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "v", a.v, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "k_cache", a.k_cache, 3));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "v_cache", a.v_cache, 3));
    // A pool whose page is the batch row and whose slot is the position.
    AppendParams prm;
    prm.slots = AppendSlots::contiguous;
    prm.rows = a.k.shape[0];
    prm.num_kv_heads = d.num_kv_heads, prm.k_dim = prm.v_dim = d.head_dim;
    prm.batch = a.k_cache.shape[0];
    prm.max_len = a.k_cache.shape[2];
    prm.k = a.k.data, prm.v = a.v.data;
    prm.k_stride_n = a.k.strides[0], prm.k_stride_h = a.k.strides[1];
    prm.v_stride_n = a.v.strides[0], prm.v_stride_h = a.v.strides[1];
    prm.pool.k = a.k_cache.data, prm.pool.v = a.v_cache.data;
    prm.pool.k_stride_page = a.k_cache.strides[0], prm.pool.k_stride_head = a.k_cache.strides[1];
    prm.pool.k_stride_slot = a.k_cache.strides[2];
    prm.pool.v_stride_page = a.v_cache.strides[0], prm.pool.v_stride_head = a.v_cache.strides[1];
    prm.pool.v_stride_slot = a.v_cache.strides[2];
    prm.batch_indices = a.batch_indices.defined() ? a.batch_indices.ptr<const std::int32_t>() : nullptr;
    prm.positions = a.positions.ptr<const std::int32_t>();
    return launch_on(device, Op::kName, [&] { return s.launch(prm, stream.handle); });
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(PagedKvAppend, PagedKvAppendTraits)
KVSERVE_CUDA_KERNEL(PagedMlaAppend, PagedMlaAppendTraits)
KVSERVE_CUDA_KERNEL(KvCacheAppend, KvCacheAppendTraits)

}  // namespace kvserve::detail
