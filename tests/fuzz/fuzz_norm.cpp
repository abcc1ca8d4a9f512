// Fuzz target: RmsNorm on the CPU backend (plain, Gemma offset, fused add in
// place, QK norm over [tokens, heads, hidden]), eps edges included.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "kvserve/norm.hpp"

namespace kvserve::fuzz {

namespace {

void rms_norm(FuzzInput& in, Arena& a) {
  RmsNormDesc d;
  d.hidden_size = in.isize(1 + in.u8() % 64, kMaxRowWidth);
  d.dtype = in.dtype(in.flag() ? DType::f32 : DType::bf16);
  d.eps = in.param(1e-6f);
  d.weight_offset = in.flag() ? in.param(1.f) : 0.f;
  d.fused_add = in.flag();
  std::vector<std::int64_t> shape{in.u8() % 5};
  if (in.flag()) shape.push_back(in.u8() % 4);
  shape.push_back(d.hidden_size);
  RmsNormArgs args;
  args.x = a.tensor(d.dtype, shape);
  args.weight = a.tensor(d.dtype, {d.hidden_size});
  if (d.fused_add || in.pick(8) == 0) args.residual = a.tensor(d.dtype, shape);
  args.out = in.pick(8) == 0 ? args.x : a.tensor(d.dtype, shape);
  drive<RmsNorm>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

}  // namespace

KVSERVE_FUZZ_CASES(rms_norm)

}  // namespace kvserve::fuzz
