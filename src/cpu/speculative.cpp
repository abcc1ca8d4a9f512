// CPU kernel for ChainSpeculativeSampling: per row, the n acceptance tests,
// then one draw from the residual at the first failure (or the bonus draw).
#include "core/backend_kernels.hpp"
#include "cpu/cpu_info.hpp"
#include "cpu/sampling_core.hpp"
#include "kvserve/speculative.hpp"

namespace kvserve::detail {

namespace {

struct RowResult {
  std::int32_t accepted = 0;  // positions passing their own test
  std::int32_t emitted = 0;   // the passing prefix
};

RowResult verify_row(const ChainSpeculativeSamplingDesc& d, const ChainSpeculativeSamplingArgs& a, std::int64_t b,
                     cpu::WeightedRow& row) {
  const int n = d.num_draft_tokens, vocab = d.vocab;
  const std::int32_t* draft_ids = a.draft_token_ids.ptr<std::int32_t>() + b * a.draft_token_ids.strides[0];
  const auto draft_row = [&](int t) {
    return a.draft_probs.ptr<float>() + b * a.draft_probs.strides[0] + t * a.draft_probs.strides[1];
  };
  const auto target_row = [&](int t) {
    return a.target_probs.ptr<float>() + b * a.target_probs.strides[0] + t * a.target_probs.strides[1];
  };
  std::int32_t* out = a.out.ptr<std::int32_t>() + b * a.out.strides[0];

  RowResult r{0, n};
  for (int t = 0; t < n; ++t) {
    const std::int32_t id = draft_ids[t * a.draft_token_ids.strides[1]];
    bool pass = false;
    if (id >= 0 && id < vocab) {
      // u < p / q as u * q < p; the product of two 24-bit significands is exact in double.
      const double u = accept_uniform(cpu::row_random_block(d.random, a, b, static_cast<std::uint32_t>(t)));
      pass = u * double{draft_row(t)[id]} < double{target_row(t)[id]};
    }
    r.accepted += pass;
    if (!pass && r.emitted == n) r.emitted = t;
  }
  for (int t = 0; t < r.emitted; ++t) out[t * a.out.strides[1]] = draft_ids[t * a.draft_token_ids.strides[1]];
  const int e = r.emitted;
  if (e < n) cpu::load_residual(target_row(e), draft_row(e), vocab, &row);
  if (e == n || row.total == 0) cpu::load_probs(target_row(e), vocab, &row);
  const std::uint64_t bits = draw_bits(cpu::row_random_block(d.random, a, b, static_cast<std::uint32_t>(e)));
  out[e * a.out.strides[1]] = cpu::draw(row, cpu::everything(row), bits);
  for (int t = e + 1; t <= n; ++t) out[t * a.out.strides[1]] = -1;
  return r;
}

Status run_verify(const PlanState<ChainSpeculativeSampling>& p, const ChainSpeculativeSamplingArgs& a, Workspace,
                  Stream) {
  const std::int64_t cost = std::int64_t{4} * p.desc.vocab * (std::int64_t{p.desc.num_draft_tokens} + 1);
  cpu::for_each_row(a.draft_token_ids.shape[0], cost, [&](std::int64_t b, cpu::WeightedRow& row) {
    const RowResult r = verify_row(p.desc, a, b, row);
    if (a.accepted.defined()) a.accepted.ptr<std::int32_t>()[b] = r.accepted;
    if (a.emitted.defined()) a.emitted.ptr<std::int32_t>()[b] = r.emitted;
  });
  return Status::ok();
}

}  // namespace

template <>
Result<Kernel<ChainSpeculativeSampling>> cpu_kernel<ChainSpeculativeSampling>(const ChainSpeculativeSamplingDesc& d) {
  return cpu::make_kernel<ChainSpeculativeSampling>(cpu::config("n", d.num_draft_tokens, "random", d.random),
                                                    run_verify);
}

}  // namespace kvserve::detail
