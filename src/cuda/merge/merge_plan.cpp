// MergeState and MergeStates on CUDA (one kernel for both): the row for the
// state dtype, and the launch. No workspace, no prepare: run() is
// graph-capturable as is.
#include <string>

#include "core/check.hpp"
#include "cuda/common/cuda_plan.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/merge/merge_params.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

const LaunchTable<MergeLaunch> kMergeLaunchers{merge_launchers_f16(), merge_launchers_bf16(),
                                               merge_launchers_f32()};

// Where both ops write: the merged rows and, when asked for, their lse.
void set_outputs(MergeParams* prm, const TensorView& v_out, const TensorView& lse_out) {
  prm->out = v_out.data;
  prm->out_stride_t = v_out.strides[0], prm->out_stride_h = v_out.strides[1];
  if (lse_out.defined()) {
    prm->lse_out = lse_out.ptr<float>();
    prm->lse_out_stride_t = lse_out.strides[0], prm->lse_out_stride_h = lse_out.strides[1];
  }
}

// What the two ops share: the row, the identity and the promise.
template <class MergeOp>
struct MergeTraitsBase {
  using Op = MergeOp;
  struct Selected {
    MergeLaunch launch;
  };
  static Result<Selected> select(const typename Op::Desc& d, const DeviceFacts&) {
    auto row = find_row(Op::kName, Family::merge, {d.dtype, d.dtype, d.head_dim});
    if (!row) return row.status();
    // A block holds a head's chunks, up to 256 of them.
    if (const int chunk = 16 / static_cast<int>(size_of(d.dtype)); d.head_dim > 256 * chunk)
      return no_kernel(Op::kName, "d=" + std::to_string(d.head_dim),
                       "d a multiple of " + std::to_string(chunk) + " up to " + std::to_string(256 * chunk));
    return Selected{kMergeLaunchers[*row]};
  }
  static std::string config(const typename Op::Desc& d, const Selected&) {
    return "dtype=" + std::string(name_of(d.dtype)) + " d=" + std::to_string(d.head_dim) +
           " chunk=16B rows_in_flight=" + std::to_string(kMergeRowsInFlight) +
           " states_in_flight<=" + std::to_string(kMergeMaxStatesInFlight);
  }
  // Each row merged on its own in a fixed order: deterministic and batch invariant.
  static Precision precision(const typename Op::Desc&) { return {DType::f32, DType::f32, true, true}; }
};

struct MergeStatesTraits : MergeTraitsBase<MergeStates> {
  static Status run(const Selected& s, const MergeStatesDesc& d, Device device, const MergeStatesArgs& a, Workspace,
                    Stream stream) {
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "v", a.v, 3));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "v_out", a.v_out, 2));
    if (a.v.shape[1] > kMergeMaxStates)
      return no_kernel(Op::kName, std::to_string(a.v.shape[1]) + " states per row (argument 'v', dimension 1)",
                       "at most " + std::to_string(kMergeMaxStates));
    MergeParams prm;
    prm.tokens = a.v.shape[0];
    prm.num_states = static_cast<int>(a.v.shape[1]);
    prm.num_heads = d.num_heads, prm.head_dim = d.head_dim;
    prm.v = a.v.data;
    prm.v_stride_t = a.v.strides[0], prm.v_stride_n = a.v.strides[1], prm.v_stride_h = a.v.strides[2];
    prm.lse = a.lse.ptr<const float>();
    prm.lse_stride_t = a.lse.strides[0], prm.lse_stride_n = a.lse.strides[1], prm.lse_stride_h = a.lse.strides[2];
    set_outputs(&prm, a.v_out, a.lse_out);
    return launch_on(device, Op::kName, [&] { return s.launch(prm, stream.handle); });
  }
};

struct MergeStateTraits : MergeTraitsBase<MergeState> {
  static Status run(const Selected& s, const MergeStateDesc& d, Device device, const MergeStateArgs& a, Workspace,
                    Stream stream) {
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "v_a", a.v_a, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "v_b", a.v_b, 2));
    KVSERVE_TRY(check_16_byte_rows(Op::kName, "v_out", a.v_out, 2));
    MergeParams prm;
    prm.tokens = a.v_a.shape[0];
    prm.num_states = 2;
    prm.num_heads = d.num_heads, prm.head_dim = d.head_dim;
    prm.v = a.v_a.data, prm.v_b = a.v_b.data;
    prm.v_stride_t = a.v_a.strides[0], prm.v_stride_h = a.v_a.strides[1];
    prm.vb_stride_t = a.v_b.strides[0], prm.vb_stride_h = a.v_b.strides[1];
    prm.lse = a.lse_a.ptr<const float>(), prm.lse_b = a.lse_b.ptr<const float>();
    prm.lse_stride_t = a.lse_a.strides[0], prm.lse_stride_h = a.lse_a.strides[1];
    prm.lseb_stride_t = a.lse_b.strides[0], prm.lseb_stride_h = a.lse_b.strides[1];
    set_outputs(&prm, a.v_out, a.lse_out);
    return launch_on(device, Op::kName, [&] { return s.launch(prm, stream.handle); });
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(MergeStates, MergeStatesTraits)
KVSERVE_CUDA_KERNEL(MergeState, MergeStateTraits)

}  // namespace kvserve::detail
