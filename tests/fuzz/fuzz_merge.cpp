// Fuzz target: MergeState and MergeStates on the CPU backend, with LSE values
// that include NaN and +-inf. The first byte picks the op.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "kvserve/merge.hpp"

namespace kvserve::fuzz {

namespace {

void merge_state(FuzzInput& in, Arena& a) {
  MergeStateDesc d;
  d.num_heads = in.isize(1 + in.u8() % 3, kMaxHeads);
  d.head_dim = in.isize(1 + in.u8() % 32, kMaxRowWidth);
  d.dtype = in.dtype(in.flag() ? DType::f32 : DType::bf16);
  std::int64_t t = in.u8() % 5;
  MergeStateArgs args;
  args.v_a = a.tensor(d.dtype, {t, d.num_heads, d.head_dim});
  args.lse_a = a.tensor(DType::f32, {t, d.num_heads});
  args.v_b = a.tensor(d.dtype, {t, d.num_heads, d.head_dim});
  args.lse_b = a.tensor(DType::f32, {t, d.num_heads});
  switch (in.pick(4)) {  // in place (allowed) or out of place
    case 0: args.v_out = args.v_a; args.lse_out = args.lse_a; break;
    case 1: args.v_out = args.v_b; break;
    default:
      args.v_out = a.tensor(d.dtype, {t, d.num_heads, d.head_dim});
      if (in.flag()) args.lse_out = a.tensor(DType::f32, {t, d.num_heads});
  }
  drive<MergeState>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

void merge_states(FuzzInput& in, Arena& a) {
  MergeStatesDesc d;
  d.num_heads = in.isize(1 + in.u8() % 3, kMaxHeads);
  d.head_dim = in.isize(1 + in.u8() % 32, kMaxRowWidth);
  d.dtype = in.dtype(in.flag() ? DType::f32 : DType::f16);
  std::int64_t t = in.u8() % 5, n = in.u8() % 4;
  MergeStatesArgs args;
  args.v = a.tensor(d.dtype, {t, n, d.num_heads, d.head_dim});
  args.lse = a.tensor(DType::f32, {t, n, d.num_heads});
  args.v_out = a.tensor(d.dtype, {t, d.num_heads, d.head_dim});
  if (in.flag()) args.lse_out = a.tensor(DType::f32, {t, d.num_heads});
  drive<MergeStates>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

}  // namespace

KVSERVE_FUZZ_CASES(merge_state, merge_states)

}  // namespace kvserve::fuzz
