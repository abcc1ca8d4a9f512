// Benchmarks of the attention ops.
#include <cmath>
#include <random>

#include "bench_ops.hpp"
#include "compare.hpp"
#include "kvserve/attention.hpp"
#include "oracle.hpp"
#include "paged_cache.hpp"

namespace kvserve::cli {
namespace {

// Requests the --check compares against the oracle (the oracle is naive fp64).
constexpr std::int64_t kCheckedRequests = 4;

Status run_decode(const Options& o, const BenchContext& ctx, std::vector<BenchResult>* out) {
  const bool gpu = ctx.device.is_cuda();
  const std::int64_t batch = o.given("batch") ? o.integer("batch") : (gpu ? 64 : 8);
  const std::int64_t kv_len = o.given("kv-len") ? o.integer("kv-len") : (gpu ? 4096 : 1024);
  const int hq = static_cast<int>(o.integer("num-qo-heads")), hkv = static_cast<int>(o.integer("num-kv-heads"));
  const int d = static_cast<int>(o.integer("head-dim"));
  const DType q_dtype = o.dtype("dtype");
  const DType kv_dtype = o.given("kv-dtype") ? o.dtype("kv-dtype") : q_dtype;
  if (hq % hkv != 0)
    return Status::invalid_argument("--num-qo-heads: expected a multiple of --num-kv-heads (" + std::to_string(hkv) +
                                    "), got " + std::to_string(hq));
  std::mt19937_64 rng(ctx.seed);
  PagedKvDesc kvd{.page_size = static_cast<int>(o.integer("page-size")), .num_kv_heads = hkv, .head_dim = d,
                  .dtype = kv_dtype, .layout = o.layout("layout")};
  if (is_fp8(kv_dtype)) kvd.k_scale = kvd.v_scale = {0.5f};
  test::PagedCache cache =
      test::make_paged_cache(rng, kvd, std::vector<std::int64_t>(static_cast<std::size_t>(batch), kv_len), ctx.device);
  BatchPagedDecodeDesc desc{.max_batch = static_cast<int>(batch), .num_qo_heads = hq, .kv = cache.desc,
                            .q_dtype = q_dtype,
                            .attn = {.logits_soft_cap = static_cast<float>(o.real("soft-cap")),
                                     .window_left = static_cast<int>(o.integer("window-left"))}};
  auto plan = BatchPagedDecodePlan::create(desc, ctx.device);
  if (!plan) return plan.status();
  test::DeviceMemory ws(ctx.device, plan->workspace_bytes());
  KVSERVE_TRY(plan->prepare(cache.lengths(), test::workspace_of(ws), {}));
  test::Buffer q(q_dtype, batch * hq * d, ctx.device), res(q_dtype, batch * hq * d, ctx.device);
  q.fill_uniform(rng, -2, 2);
  res.poison();
  const BatchPagedDecodeArgs args{.q = q.view({batch, hq, d}), .kv = cache.view(), .out = res.view({batch, hq, d})};

  BenchResult r;
  r.op = "decode";
  r.shape = "B=" + std::to_string(batch) + " L=" + std::to_string(kv_len) + " Hq=" + std::to_string(hq) +
            " Hkv=" + std::to_string(hkv) + " D=" + std::to_string(d) + " page=" + std::to_string(kvd.page_size) +
            " " + std::string(name_of(kv_dtype)) + " " + std::string(name_of(kvd.layout));
  r.kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, test::workspace_of(ws), {}); }, &r.time_us));
  const double kv_bytes = 2.0 * batch * kv_len * hkv * d * size_of(kv_dtype);
  r.bytes = kv_bytes + 2.0 * batch * hq * d * size_of(q_dtype) + 4.0 * (cache.indices.size() + 2 * batch);
  r.flops = 4.0 * batch * hq * kv_len * d;
  if (ctx.check) {
    res.download();
    oracle::AttentionSpec spec{.num_qo_heads = hq, .num_kv_heads = hkv, .head_dim = d, .head_dim_v = d,
                               .sm_scale = 1.0 / std::sqrt(double(d)), .soft_cap = o.real("soft-cap"),
                               .window_left = static_cast<int>(o.integer("window-left")), .causal = true};
    std::vector<double> got, ref;
    for (std::int64_t b = 0; b < std::min(batch, kCheckedRequests); ++b) {
      std::vector<double> qb(static_cast<std::size_t>(hq * d)), ob, lb;
      for (std::int64_t i = 0; i < hq * d; ++i) qb[i] = q.get(b * hq * d + i), got.push_back(res.get(b * hq * d + i));
      oracle::attention(spec, qb, cache.keys(b), cache.values(b), 1, kv_len, &ob, &lb);
      ref.insert(ref.end(), ob.begin(), ob.end());
    }
    const test::Comparison c = test::compare(got, ref, q_dtype);
    r.check = c.summary();
    r.check_ok = c.failures == 0;
  }
  out->push_back(r);
  return Status::ok();
}

}  // namespace

BenchOp decode_bench() {
  return {"decode",
          "BatchPagedDecode: one query token per request against a paged KV cache (pages in random order)",
          {
              {"batch", OptKind::positive_int, "", "requests (default 64 on a GPU, 8 on the CPU)"},
              {"kv-len", OptKind::positive_int, "", "KV tokens per request (default 4096 on a GPU, 1024 on the CPU)"},
              {"num-qo-heads", OptKind::positive_int, "32", "query heads"},
              {"num-kv-heads", OptKind::positive_int, "8", "KV heads"},
              {"head-dim", OptKind::head_dim, "128", "head dimension"},
              {"page-size", OptKind::positive_int, "16", "tokens per page"},
              {"dtype", OptKind::dtype, "bf16", "query / output dtype"},
              {"kv-dtype", OptKind::dtype, "", "KV cache dtype (default: --dtype; fp8 gets scale 0.5)"},
              {"layout", OptKind::layout, "NHD", "KV pool layout"},
              {"soft-cap", OptKind::real, "0", "logits soft-cap (0: off)"},
              {"window-left", OptKind::integer, "-1", "sliding window (-1: off)"},
          },
          run_decode};
}

}  // namespace kvserve::cli
