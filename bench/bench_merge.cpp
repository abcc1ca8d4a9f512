// Benchmark of MergeStates: N partial attention states per (token, head)
// merged into one, as after split-KV or cascade attention.
#include <algorithm>
#include <random>

#include "bench_ops.hpp"
#include "kvserve/merge.hpp"
#include "reference/attention_support.hpp"
#include "reference/compare.hpp"
#include "reference/oracle_merge.hpp"

namespace kvserve::cli {

// Tokens --check compares against the oracle.
constexpr std::int64_t kCheckedTokens = 64;


Status run_merge(const Options& o, const BenchContext& ctx, BenchResult* r) {
  const std::int64_t tokens = o.size("tokens", ctx.on_gpu());
  const std::int64_t n = o.integer("states");
  const int heads = static_cast<int>(o.integer("num-heads")), dim = static_cast<int>(o.integer("head-dim"));
  const DType dtype = o.dtype("dtype");
  std::mt19937_64 rng(ctx.seed);
  test::Buffer v(dtype, tokens * n * heads * dim, ctx.device), lse(DType::f32, tokens * n * heads, ctx.device);
  test::Buffer res(dtype, tokens * heads * dim, ctx.device), res_lse(DType::f32, tokens * heads, ctx.device);
  v.fill_uniform(rng, -1, 1);
  lse.fill_uniform(rng, -10, 10);
  res.poison();
  res_lse.poison();
  auto plan = MergeStatesPlan::create({.num_heads = heads, .head_dim = dim, .dtype = dtype}, ctx.device);
  if (!plan) return plan.status();
  test::DeviceMemory ws(ctx.device, plan->workspace_bytes());
  const MergeStatesArgs args{.v = v.view({tokens, n, heads, dim}), .lse = lse.view({tokens, n, heads}),
                             .v_out = res.view({tokens, heads, dim}), .lse_out = res_lse.view({tokens, heads})};

  r->shape = "T=" + std::to_string(tokens) + " N=" + std::to_string(n) + " H=" + std::to_string(heads) +
            " D=" + std::to_string(dim) + " " + std::string(name_of(dtype));
  r->kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, test::workspace_of(ws), {}); }, &r->time_us));
  r->bytes = static_cast<double>(v.size() + res.size()) * size_of(dtype) + 4.0 * (lse.size() + res_lse.size());
  r->flops = 2.0 * v.size();  // one multiply-add per input element
  if (ctx.check) {
    res.download();
    const std::int64_t checked = std::min(tokens, kCheckedTokens);
    // The oracle wants [rows, n, dim]: row (token, head) gathers its n states.
    std::vector<double> sv, sl, ref, ref_lse;
    for (std::int64_t t = 0; t < checked; ++t)
      for (int h = 0; h < heads; ++h)
        for (std::int64_t i = 0; i < n; ++i) {
          test::append(&sv, test::slice(v, ((t * n + i) * heads + h) * dim, dim));
          sl.push_back(lse.get((t * n + i) * heads + h));
        }
    oracle::merge_states(sv, sl, checked * heads, n, dim, &ref, &ref_lse);
    const test::Comparison c = test::compare(test::slice(res, 0, checked * heads * dim), ref, dtype);
    r->set_check(c);
  }
  return Status::ok();
}

}  // namespace kvserve::cli
