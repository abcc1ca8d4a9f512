// Benchmark of BatchPagedMlaDecode (mla.hpp): one query token per request, all
// heads over the request's latent rows. The bytes are the cache read once
// (ckv + kpe per token) plus q and out; with --check the first requests are
// compared with the fp64 oracle (attention over [ckv | kpe] keys, ckv values).
#include <algorithm>
#include <cmath>
#include <random>

#include "bench_ops.hpp"
#include "kvserve/mla.hpp"
#include "reference/attention_support.hpp"
#include "reference/compare.hpp"
#include "reference/oracle.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::cli {

constexpr std::int64_t kCheckedRequests = 4;


Status run_mla_decode(const Options& o, const BenchContext& ctx, BenchResult* r) {
  const std::int64_t batch = o.size("batch", ctx.on_gpu());
  const std::int64_t kv_len = o.size("kv-len", ctx.on_gpu());
  const int heads = static_cast<int>(o.integer("num-heads"));
  const int ckv = static_cast<int>(o.integer("ckv-dim")), kpe = static_cast<int>(o.integer("kpe-dim"));
  const DType dtype = o.dtype("dtype");
  if (is_fp8(dtype)) return Status::invalid_argument("--dtype: expected f16, bf16 or f32, got " + o.text("dtype"));
  std::mt19937_64 rng(ctx.seed);
  const test::MlaCache cache = test::make_mla_cache(rng, dtype, static_cast<int>(o.integer("page-size")), ckv, kpe,
                                                    std::vector<std::int64_t>(batch, kv_len), ctx.device);
  const float sm_scale = 1.f / std::sqrt(192.f);  // DeepSeek-V3's
  auto plan = BatchPagedMlaDecodePlan::create(
      {.max_batch = static_cast<int>(batch), .num_heads = heads, .cache = cache.desc, .sm_scale = sm_scale},
      ctx.device);
  if (!plan) return plan.status();
  test::DeviceMemory ws(ctx.device, plan->workspace_bytes());
  KVSERVE_TRY(plan->prepare(cache.table.lengths(), test::workspace_of(ws), {}));
  // q as one projection output [B, H, ckv + kpe]: q_nope and q_pe are views of it.
  const int width = ckv + kpe;
  test::Buffer q(dtype, batch * heads * width, ctx.device), res(dtype, batch * heads * ckv, ctx.device);
  q.fill_uniform(rng, -2, 2);
  res.poison();
  TensorView q_pe = q.view_strided({batch, heads, kpe}, {heads * width, width, 1});
  q_pe.data = static_cast<char*>(q_pe.data) + ckv * size_of(dtype);
  const BatchPagedMlaDecodeArgs args{.q_nope = q.view_strided({batch, heads, ckv}, {heads * width, width, 1}),
                                     .q_pe = q_pe, .cache = cache.view(), .out = res.view({batch, heads, ckv})};

  r->shape = "B=" + std::to_string(batch) + " L=" + std::to_string(kv_len) + " H=" + std::to_string(heads) +
            " ckv=" + std::to_string(ckv) + " kpe=" + std::to_string(kpe) +
            " page=" + std::to_string(cache.desc.page_size) + " " + std::string(name_of(dtype));
  r->kernel = plan->kernel().key();
  r->bytes = (static_cast<double>(batch) * kv_len * width + static_cast<double>(batch) * heads * (width + ckv)) *
                size_of(dtype) +
            4.0 * (static_cast<double>(cache.table.indices.size()) + 2 * batch);
  r->flops = 2.0 * batch * kv_len * heads * (width + ckv);  // q.k over width, p.v over ckv
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, test::workspace_of(ws), {}); }, &r->time_us));
  if (ctx.check) {
    res.download();
    const oracle::AttentionSpec spec{.num_qo_heads = heads, .num_kv_heads = 1, .head_dim = width, .head_dim_v = ckv,
                                     .sm_scale = sm_scale, .causal = true};
    std::vector<double> got, ref;
    for (std::int64_t b = 0; b < std::min(batch, kCheckedRequests); ++b) {
      std::vector<double> o_ref, lse;
      oracle::attention(spec, test::slice(q, b * heads * width, heads * width), cache.keys(b), cache.table.keys(b), 1,
                        kv_len, &o_ref, &lse);
      test::append(&got, test::slice(res, b * heads * ckv, heads * ckv));
      test::append(&ref, o_ref);
    }
    const test::Comparison cmp = test::compare(got, ref, dtype);
    r->set_check(cmp);
  }
  return Status::ok();
}

}  // namespace kvserve::cli
