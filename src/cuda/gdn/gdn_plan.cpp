// GdnPrefill and GdnDecode on CUDA: the row for the dtype, and the launch of
// the one recurrent kernel (gdn.cu). No workspace, no prepare: run() is
// graph-capturable as is (cu_seqlens and the slots are read on the device).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/check.hpp"
#include "cuda/common/cuda_plan.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/gdn/gdn_params.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

const LaunchTable<GdnLaunch> kGdnLaunchers{gdn_launchers()};

GdnState state_of(const TensorView& t) {
  if (!t.defined()) return {};
  return {t.ptr<float>(), t.strides[0], t.strides[1], t.strides[2]};
}

// The traits both ops share: the lookup, the identity, and the fields of the
// launch that the heads, q, k, v, gates and out give (the rest is the op's).
template <class O>
struct GdnTraits {
  using Op = O;
  struct Selected {
    GdnLaunch launch;
  };

  static Result<Selected> select(const typename Op::Desc& d, const DeviceFacts&) {
    auto row = find_row(Op::kName, Family::gdn, {d.dtype, d.dtype, kAnyHeadDim});
    if (!row) return row.status();
    return Selected{kGdnLaunchers[*row]};
  }
  static std::string config(const typename Op::Desc& d, const Selected&) {
    return "dtype=" + std::string(name_of(d.dtype)) + " h_qk=" + std::to_string(d.num_qk_heads) +
           " h_v=" + std::to_string(d.num_v_heads) + " dk=" + std::to_string(d.head_dim_k) +
           " dv=" + std::to_string(d.head_dim_v) + " l2norm=" + std::to_string(d.use_qk_l2norm ? 1 : 0) +
           " recurrent rows_per_block=" + std::to_string(kGdnRowsPerBlock);
  }
  // Each row's dots in a fixed lane order, tokens in order: deterministic and
  // batch invariant.
  static Precision precision(const typename Op::Desc&) { return {DType::f32, DType::f32, true, true}; }

  static Result<GdnParams> common(const typename Op::Desc& d, const typename Op::Args& a, std::int64_t batch) {
    for (const auto& [name, t] : {std::pair{"q", &a.q}, {"k", &a.k}, {"v", &a.v}, {"out", &a.out}})
      KVSERVE_TRY(check_16_byte_rows(Op::kName, name, *t, 2));
    GdnParams p;
    p.batch = batch;
    p.tokens = a.q.shape[0];
    p.heads = std::max(d.num_qk_heads, d.num_v_heads);
    if (gdn_blocks(batch, p.heads, d.head_dim_v) > std::numeric_limits<std::int32_t>::max())
      return invalid_arg(Op::kName, "q", "at most 2^31 - 1 blocks of sequences x heads x d_v / 32",
                         std::to_string(gdn_blocks(batch, p.heads, d.head_dim_v)));
    p.qk_group = p.heads / d.num_qk_heads, p.v_group = p.heads / d.num_v_heads;
    p.dk = d.head_dim_k, p.dv = d.head_dim_v;
    p.scale = d.scale.value_or(1.f / std::sqrt(static_cast<float>(d.head_dim_k)));
    p.l2norm = d.use_qk_l2norm, p.eps = d.l2norm_eps;
    p.q = a.q.data, p.q_stride_t = a.q.strides[0], p.q_stride_h = a.q.strides[1];
    p.k = a.k.data, p.k_stride_t = a.k.strides[0], p.k_stride_h = a.k.strides[1];
    p.v = a.v.data, p.v_stride_t = a.v.strides[0], p.v_stride_h = a.v.strides[1];
    p.alpha = a.alpha.template ptr<const float>(), p.alpha_stride_t = a.alpha.strides[0];
    p.beta = a.beta.template ptr<const float>(), p.beta_stride_t = a.beta.strides[0];
    p.out = a.out.data, p.out_stride_t = a.out.strides[0], p.out_stride_h = a.out.strides[1];
    return p;
  }
};

struct GdnPrefillTraits : GdnTraits<GdnPrefill> {
  static Status run(const Selected& s, const GdnPrefillDesc& d, Device device, const GdnPrefillArgs& a, Workspace,
                    Stream stream) {
    for (const auto& [name, t] : {std::pair{"initial_state", &a.initial_state}, {"final_state", &a.final_state}})
      KVSERVE_TRY(check_16_byte_rows(Op::kName, name, *t, 3));
    auto p = common(d, a, a.cu_seqlens.shape[0] - 1);
    if (!p) return p.status();
    p->cu = a.cu_seqlens.ptr<const std::int32_t>();
    p->state_in = state_of(a.initial_state);
    p->state_out = state_of(a.final_state);
    return launch_on(device, Op::kName, [&] { return s.launch(*p, stream.handle); });
  }
};

struct GdnDecodeTraits : GdnTraits<GdnDecode> {
  static Status run(const Selected& s, const GdnDecodeDesc& d, Device device, const GdnDecodeArgs& a, Workspace,
                    Stream stream) {
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "state", a.state, 3));
    auto p = common(d, a, a.q.shape[0]);
    if (!p) return p.status();
    p->slots = a.state_indices.ptr<const std::int32_t>();
    p->num_slots = d.num_state_slots;
    p->state_in = p->state_out = state_of(a.state);
    return launch_on(device, Op::kName, [&] { return s.launch(*p, stream.handle); });
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(GdnPrefill, GdnPrefillTraits)
KVSERVE_CUDA_KERNEL(GdnDecode, GdnDecodeTraits)

}  // namespace kvserve::detail
