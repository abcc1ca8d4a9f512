// Fuzz target: GdnPrefill and GdnDecode (gated delta rule) on the CPU
// backend: GQA / GVA head ratios, cu_seqlens not monotone or not ending at T,
// gates alpha / beta with NaN, +-inf, 0, negative and > 1 values, optional
// and in-place state; decode slots -1, out of range, negative, repeated.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "kvserve/gdn.hpp"

namespace kvserve::fuzz {

namespace {

// The fields GdnPrefillDesc and GdnDecodeDesc share.
template <class Desc>
void gdn_heads(FuzzInput& in, Desc& d) {
  int heads = 1 + in.u8() % 2;
  d.num_qk_heads = in.isize(heads, kMaxHeads);
  d.num_v_heads = in.isize(heads * (1 + in.u8() % 2), kMaxHeads);
  d.head_dim_k = in.isize(16, kMaxHeadDim);
  d.head_dim_v = in.isize(16, kMaxHeadDim);
  d.dtype = in.dtype(in.flag() ? DType::f32 : DType::bf16);
  if (in.flag()) d.scale = in.param(0.25f);
  d.use_qk_l2norm = in.flag();
  d.l2norm_eps = in.param(1e-6f);
}

void gdn_prefill(FuzzInput& in, Arena& a) {
  GdnPrefillDesc d;
  d.max_batch = in.isize(4, kMaxBatch);
  d.max_tokens = in.size(32, kMaxTokens);
  gdn_heads(in, d);

  std::int64_t b = in.u8() % 4;
  std::vector<std::int32_t> cu{0};
  for (std::int64_t i = 0; i < b; ++i) cu.push_back(cu.back() + in.u8() % 5);
  switch (in.u8() % 12) {
    case 0: if (cu.size() > 1) cu[in.u8() % cu.size()] -= 2; break;
    case 1: cu[0] = 1; break;
    case 2: cu.back() += 1; break;  // cu[B] != T
    case 3: cu.back() = std::numeric_limits<std::int32_t>::max(); break;
    default: break;
  }
  std::int64_t t = std::clamp<std::int64_t>(cu.back(), 0, 32);
  std::int64_t h = std::max(d.num_qk_heads, d.num_v_heads);
  GdnPrefillArgs args;
  args.q = a.tensor(d.dtype, {t, d.num_qk_heads, d.head_dim_k});
  args.k = a.tensor(d.dtype, {t, d.num_qk_heads, d.head_dim_k});
  args.v = a.tensor(d.dtype, {t, d.num_v_heads, d.head_dim_v});
  args.alpha = a.tensor(DType::f32, {t, h});  // gates: element() yields NaN, +-inf, 0, < 0, > 1
  args.beta = a.tensor(DType::f32, {t, h});
  args.cu_seqlens = a.ints(cu);
  if (in.flag()) args.initial_state = a.tensor(DType::f32, {b, h, d.head_dim_v, d.head_dim_k});
  args.out = a.tensor(d.dtype, {t, h, d.head_dim_v});
  switch (in.pick(3)) {
    case 0: args.final_state = a.tensor(DType::f32, {b, h, d.head_dim_v, d.head_dim_k}); break;
    case 1: args.final_state = args.initial_state; break;  // in place
    default: break;
  }
  drive<GdnPrefill>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

// Slots in range, -1 (padding), out of range, negative and repeated.
void gdn_decode(FuzzInput& in, Arena& a) {
  GdnDecodeDesc d;
  d.max_batch = in.isize(4, kMaxBatch);
  d.num_state_slots = in.isize(4, kMaxBatch);
  gdn_heads(in, d);
  const std::int64_t b = in.u8() % 5, slots = std::clamp<std::int64_t>(d.num_state_slots, 0, 8);
  const std::int64_t h = std::max(d.num_qk_heads, d.num_v_heads);
  std::vector<std::int32_t> index;
  for (std::int64_t i = 0; i < b; ++i) index.push_back(static_cast<std::int32_t>(in.u8() % 10) - 1);
  GdnDecodeArgs args;
  args.q = a.tensor(d.dtype, {b, d.num_qk_heads, d.head_dim_k});
  args.k = a.tensor(d.dtype, {b, d.num_qk_heads, d.head_dim_k});
  args.v = a.tensor(d.dtype, {b, d.num_v_heads, d.head_dim_v});
  args.alpha = a.tensor(DType::f32, {b, h});
  args.beta = a.tensor(DType::f32, {b, h});
  args.state_indices = a.ints(index);
  args.state = a.tensor(DType::f32, {slots, h, d.head_dim_v, d.head_dim_k});
  args.out = a.tensor(d.dtype, {b, h, d.head_dim_v});
  drive<GdnDecode>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

}  // namespace

KVSERVE_FUZZ_CASES(gdn_prefill, gdn_decode)

}  // namespace kvserve::fuzz
