// Benchmarks of the gated delta rule, with the in-kernel q/k L2 norm (as
// Qwen3-Next runs it): GdnPrefill over a packed batch that carries its state
// in and out, and the GdnDecode step against a pool of states.
#include <algorithm>
#include <cmath>
#include <random>

#include "bench_ops.hpp"
#include "kvserve/gdn.hpp"
#include "reference/attention_support.hpp"
#include "reference/compare.hpp"
#include "reference/oracle_gdn.hpp"

namespace kvserve::cli {
namespace {

// Sequences the --check compares against the oracle (fp64, one token at a time).
constexpr std::int64_t kCheckedSequences = 1;

}  // namespace

Status run_gdn(const Options& o, const BenchContext& ctx, BenchResult* r) {
  const std::int64_t batch = o.size("batch", ctx.on_gpu()), seq_len = o.size("seq-len", ctx.on_gpu());
  const int hqk = static_cast<int>(o.integer("num-qk-heads")), hv = static_cast<int>(o.integer("num-v-heads"));
  const int dk = static_cast<int>(o.integer("head-dim")), dv = dk;
  const DType dtype = o.dtype("dtype");
  const std::int64_t tokens = batch * seq_len, heads = std::max(hqk, hv);
  const GdnPrefillDesc desc{.max_batch = static_cast<int>(batch), .max_tokens = tokens, .num_qk_heads = hqk,
                            .num_v_heads = hv, .head_dim_k = dk, .head_dim_v = dv, .dtype = dtype,
                            .use_qk_l2norm = true};
  auto plan = GdnPrefillPlan::create(desc, ctx.device);
  if (!plan) return plan.status();  // names the bad head counts

  std::mt19937_64 rng(ctx.seed);
  test::Buffer q(dtype, tokens * hqk * dk, ctx.device), k(dtype, tokens * hqk * dk, ctx.device),
      v(dtype, tokens * hv * dv, ctx.device), alpha(DType::f32, tokens * heads, ctx.device),
      beta(DType::f32, tokens * heads, ctx.device), initial(DType::f32, batch * heads * dv * dk, ctx.device),
      final_state(DType::f32, batch * heads * dv * dk, ctx.device), res(dtype, tokens * heads * dv, ctx.device);
  for (test::Buffer* b : {&q, &k, &v, &initial}) b->fill_uniform(rng, -1, 1);
  alpha.fill_uniform(rng, 0.9, 1);
  beta.fill_uniform(rng, 0, 1);
  res.poison();
  std::vector<std::int32_t> cu;
  for (std::int64_t b = 0; b <= batch; ++b) cu.push_back(static_cast<std::int32_t>(b * seq_len));
  test::Buffer cu_seqlens = test::int_buffer(cu, ctx.device);
  const GdnPrefillArgs args{.q = q.view({tokens, hqk, dk}), .k = k.view({tokens, hqk, dk}),
                            .v = v.view({tokens, hv, dv}), .alpha = alpha.view({tokens, heads}),
                            .beta = beta.view({tokens, heads}), .cu_seqlens = cu_seqlens.view({batch + 1}),
                            .initial_state = initial.view({batch, heads, dv, dk}),
                            .out = res.view({tokens, heads, dv}),
                            .final_state = final_state.view({batch, heads, dv, dk})};

  r->shape = "B=" + std::to_string(batch) + " L=" + std::to_string(seq_len) + " Hqk=" + std::to_string(hqk) +
            " Hv=" + std::to_string(hv) + " D=" + std::to_string(dk) + " " + std::string(name_of(dtype));
  r->kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, {}, {}); }, &r->time_us));
  const double state_bytes = 2.0 * batch * heads * dv * dk * 4;  // read in, written out
  r->bytes = static_cast<double>(tokens) * ((2.0 * hqk * dk + hv * dv + heads * dv) * size_of(dtype) + 2 * heads * 4) +
            state_bytes + 4.0 * (batch + 1);
  // Per token and head: S k and S q (2 d_v d_k each) and the rank-1 update (2 d_v d_k).
  r->flops = 6.0 * tokens * heads * dv * dk;

  if (ctx.check) {
    res.download();
    final_state.download();
    const std::int64_t checked = std::min(batch, kCheckedSequences), checked_tokens = checked * seq_len;
    // The first `count` values of a buffer: the checked sequences' part.
    const auto leading = [&](const test::Buffer& b, std::int64_t count) {
      std::vector<double> all = b.values();
      all.resize(static_cast<std::size_t>(count));
      return all;
    };
    const std::vector<std::int32_t> cu_checked(cu.begin(), cu.begin() + checked + 1);
    const oracle::GdnSpec spec{.num_qk_heads = hqk, .num_v_heads = hv, .head_dim_k = dk, .head_dim_v = dv,
                               .scale = 1.0 / std::sqrt(double(dk)), .l2norm = true,
                               .l2norm_eps = desc.l2norm_eps};
    std::vector<double> ref_out, ref_state;
    oracle::gdn_prefill(spec, leading(q, checked_tokens * hqk * dk), leading(k, checked_tokens * hqk * dk),
                        leading(v, checked_tokens * hv * dv), leading(alpha, checked_tokens * heads),
                        leading(beta, checked_tokens * heads), cu_checked,
                        leading(initial, checked * heads * dv * dk), &ref_out, &ref_state);
    test::Comparison c = test::compare(leading(res, checked_tokens * heads * dv), ref_out, dtype);
    const test::Comparison c_state =
        test::compare(leading(final_state, checked * heads * dv * dk), ref_state, DType::f32);
    if (c_state.failures > 0) c = c_state;
    r->set_check(c);
  }
  return Status::ok();
}

// One decode step: each sequence's state (slots in random order in a pool of
// --batch slots) read and written in place; memory-bound on the state.
Status run_gdn_decode(const Options& o, const BenchContext& ctx, BenchResult* r) {
  const std::int64_t batch = o.size("batch", ctx.on_gpu());
  const int hqk = static_cast<int>(o.integer("num-qk-heads")), hv = static_cast<int>(o.integer("num-v-heads"));
  const int dk = static_cast<int>(o.integer("head-dim")), dv = dk;
  const DType dtype = o.dtype("dtype");
  const std::int64_t heads = std::max(hqk, hv), state_size = heads * dv * dk;
  const GdnDecodeDesc desc{.max_batch = static_cast<int>(batch), .num_state_slots = static_cast<int>(batch),
                           .num_qk_heads = hqk, .num_v_heads = hv, .head_dim_k = dk, .head_dim_v = dv,
                           .dtype = dtype, .use_qk_l2norm = true};
  auto plan = GdnDecodePlan::create(desc, ctx.device);
  if (!plan) return plan.status();

  std::mt19937_64 rng(ctx.seed);
  test::Buffer q(dtype, batch * hqk * dk, ctx.device), k(dtype, batch * hqk * dk, ctx.device),
      v(dtype, batch * hv * dv, ctx.device), alpha(DType::f32, batch * heads, ctx.device),
      beta(DType::f32, batch * heads, ctx.device), pool(DType::f32, batch * state_size, ctx.device),
      res(dtype, batch * heads * dv, ctx.device);
  for (test::Buffer* b : {&q, &k, &v, &pool}) b->fill_uniform(rng, -1, 1);
  alpha.fill_uniform(rng, 0.9, 1);
  beta.fill_uniform(rng, 0, 1);
  res.poison();
  std::vector<std::int32_t> slots(static_cast<std::size_t>(batch));
  for (std::int64_t b = 0; b < batch; ++b) slots[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(b);
  std::shuffle(slots.begin(), slots.end(), rng);
  test::Buffer state_indices = test::int_buffer(slots, ctx.device);
  const GdnDecodeArgs args{.q = q.view({batch, hqk, dk}), .k = k.view({batch, hqk, dk}), .v = v.view({batch, hv, dv}),
                           .alpha = alpha.view({batch, heads}), .beta = beta.view({batch, heads}),
                           .state_indices = state_indices.view({batch}),
                           .state = pool.view({batch, heads, dv, dk}), .out = res.view({batch, heads, dv})};
  r->shape = "B=" + std::to_string(batch) + " Hqk=" + std::to_string(hqk) + " Hv=" + std::to_string(hv) +
             " D=" + std::to_string(dk) + " " + std::string(name_of(dtype));
  r->kernel = plan->kernel().key();

  // The check runs first, on the pool as filled: the oracle's one-token
  // sequences from the checked slots' states.
  if (ctx.check) {
    const std::vector<double> before = pool.values();
    KVSERVE_TRY(plan->run(args, {}, {}));
    test::synchronize(ctx.device);
    res.download();
    pool.download();
    const std::int64_t checked = std::min(batch, kCheckedSequences);
    const std::vector<double> qv = q.values(), kv = k.values(), vv = v.values(), av = alpha.values(),
                              bv = beta.values(), outv = res.values(), after = pool.values();
    // Row `row` of `width` values of a downloaded buffer.
    const auto rows = [](const std::vector<double>& all, std::int64_t row, std::int64_t width) {
      return std::vector<double>(all.begin() + row * width, all.begin() + (row + 1) * width);
    };
    std::vector<double> got, ref, got_state, ref_state;
    for (std::int64_t b = 0; b < checked; ++b) {
      const std::int64_t slot = slots[static_cast<std::size_t>(b)];
      std::vector<double> out, state;
      oracle::gdn_prefill({.num_qk_heads = hqk, .num_v_heads = hv, .head_dim_k = dk, .head_dim_v = dv,
                           .scale = 1.0 / std::sqrt(double(dk)), .l2norm = true, .l2norm_eps = desc.l2norm_eps},
                          rows(qv, b, hqk * dk), rows(kv, b, hqk * dk), rows(vv, b, hv * dv), rows(av, b, heads),
                          rows(bv, b, heads), {0, 1}, rows(before, slot, state_size), &out, &state);
      test::append(&ref, out);
      test::append(&ref_state, state);
      test::append(&got, rows(outv, b, heads * dv));
      test::append(&got_state, rows(after, slot, state_size));
    }
    test::Comparison c = test::compare(got, ref, dtype);
    const test::Comparison c_state = test::compare(got_state, ref_state, DType::f32);
    if (c_state.failures > 0) c = c_state;
    r->set_check(c);
  }
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, {}, {}); }, &r->time_us));
  r->bytes = 2.0 * batch * state_size * 4 +
             static_cast<double>(batch) * ((2.0 * hqk * dk + hv * dv + heads * dv) * size_of(dtype) + 2 * heads * 4 + 4);
  r->flops = 6.0 * batch * heads * dv * dk;
  return Status::ok();
}

}  // namespace kvserve::cli
