// Benchmarks of the KV-cache append ops. Each appends new rows into a cache
// whose slots are already reserved, times the append (it is idempotent, so
// repeating it is a fair loop), and checks the written slots of the first
// rows against the fp64 oracle.
#include <algorithm>
#include <random>

#include "bench_ops.hpp"
#include "kvserve/kv_cache.hpp"
#include "reference/compare.hpp"
#include "reference/oracle_kv_cache.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::cli {
namespace {

// Rows the --check compares (enough to cover several requests and pages).
constexpr std::int64_t kCheckedRows = 64;

// `elements` values of new rows (K, V, ckv or kpe), random in [-2, 2].
test::Buffer random_rows(std::mt19937_64& rng, DType dtype, std::int64_t elements, Device device) {
  test::Buffer b(dtype, elements, device);
  b.fill_uniform(rng, -2, 2);
  return b;
}

// The (request, position) of every new row: decode mode one row per request at
// its last position; otherwise `tokens` rows per request after its first
// kv_len positions, in request order.
oracle::Targets append_targets(const test::PagedCache& cache, bool decode, std::int64_t kv_len, std::int64_t tokens) {
  if (decode) return oracle::decode_targets(cache.indptr, cache.last_page_len, cache.desc.page_size);
  oracle::Targets t;
  for (std::size_t b = 0; b < cache.lens.size(); ++b)
    for (std::int64_t j = 0; j < tokens; ++j) {
      t.batch.push_back(static_cast<std::int32_t>(b));
      t.position.push_back(static_cast<std::int32_t>(kv_len + j));
    }
  return t;
}

// ----------------------------------------------------------------- append --

}  // namespace

Status run_append(const Options& o, const BenchContext& ctx, BenchResult* r) {
  const std::string& mode_name = o.text("mode");
  if (mode_name != "decode" && mode_name != "ragged")
    return Status::invalid_argument("--mode: expected decode or ragged, got " + mode_name);
  const bool decode = mode_name == "decode";
  const std::int64_t batch = o.size("batch", ctx.on_gpu());
  const std::int64_t kv_len = o.integer("kv-len");
  const std::int64_t tokens = decode ? 1 : o.size("tokens", ctx.on_gpu());
  const int hkv = static_cast<int>(o.integer("num-kv-heads")), d = static_cast<int>(o.integer("head-dim"));
  const DType row_dtype = o.dtype("dtype");
  const DType kv_dtype = o.given("kv-dtype") ? o.dtype("kv-dtype") : row_dtype;
  std::mt19937_64 rng(ctx.seed);
  PagedKvDesc kvd{.page_size = static_cast<int>(o.integer("page-size")), .num_kv_heads = hkv, .head_dim = d,
                  .dtype = kv_dtype, .layout = o.layout("layout")};
  if (is_fp8(kv_dtype)) kvd.k_scale = kvd.v_scale = {0.5f};
  // The page table counts the new rows already: their slots are reserved.
  test::PagedCache cache = test::make_paged_cache(
      rng, kvd, std::vector<std::int64_t>(static_cast<std::size_t>(batch), kv_len + tokens), ctx.device);
  const oracle::Targets targets = append_targets(cache, decode, kv_len, tokens);
  const std::int64_t n = static_cast<std::int64_t>(targets.batch.size());
  const PagedKvAppendDesc desc{.kv = cache.desc, .dtype = row_dtype,
                               .mode = decode ? AppendMode::decode : AppendMode::ragged};
  auto plan = PagedKvAppendPlan::create(desc, ctx.device);
  if (!plan) return plan.status();
  test::Buffer k = random_rows(rng, row_dtype, n * hkv * d, ctx.device);
  test::Buffer v = random_rows(rng, row_dtype, n * hkv * d, ctx.device);
  test::Buffer bi = test::int_buffer(targets.batch, ctx.device), pos = test::int_buffer(targets.position, ctx.device);
  PagedKvAppendArgs args{.k = k.view({n, hkv, d}), .v = v.view({n, hkv, d}), .kv = cache.view()};
  if (!decode) {
    args.batch_indices = bi.view({n});
    args.positions = pos.view({n});
  }

  r->shape = mode_name + " B=" + std::to_string(batch) + " N=" + std::to_string(n) + " L=" + std::to_string(kv_len) +
            " Hkv=" + std::to_string(hkv) + " D=" + std::to_string(d) + " page=" + std::to_string(kvd.page_size) +
            " rows=" + std::string(name_of(row_dtype)) + " kv=" + std::string(name_of(kv_dtype)) + " " +
            std::string(name_of(kvd.layout));
  r->kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, {}, {}); }, &r->time_us));
  const double row_elements = 2.0 * n * hkv * d;  // K and V
  // Rows read and slots written once; per row its page id (and in ragged mode
  // its batch index and position); per request indptr and last_page_len.
  r->bytes = row_elements * (size_of(row_dtype) + size_of(kv_dtype)) + 4.0 * n * (decode ? 1 : 3) +
            4.0 * (2 * batch + 1);
  r->flops = is_fp8(kv_dtype) ? row_elements : 0;  // the division by the scale
  if (ctx.check) {
    cache.k.download();
    const oracle::PoolShape shape{cache.desc.num_pages, kvd.page_size, hkv, d, kvd.layout == KvLayout::HND};
    const double scale = is_fp8(kv_dtype) ? kvd.k_scale[0] : 1.0;
    std::vector<double> got, ref;
    for (std::int64_t i = 0; i < std::min(n, kCheckedRows); ++i)
      for (int h = 0; h < hkv; ++h) {
        const std::int64_t at = oracle::paged_offset(shape, cache.indptr, cache.indices, targets.batch[i],
                                                     targets.position[i], h);
        for (int x = 0; x < d; ++x) {
          got.push_back(cache.k.get(at + x));
          ref.push_back(oracle::stored_value(k.get((i * hkv + h) * d + x), scale, kv_dtype));
        }
      }
    r->set_check(test::compare(got, ref, kv_dtype));
  }
  return Status::ok();
}

// ------------------------------------------------------------- mla-append --

Status run_mla_append(const Options& o, const BenchContext& ctx, BenchResult* r) {
  const std::int64_t batch = o.size("batch", ctx.on_gpu());
  const std::int64_t kv_len = o.integer("kv-len");
  const std::int64_t tokens = o.integer("tokens");
  const int ckv = static_cast<int>(o.integer("ckv-dim")), kpe = static_cast<int>(o.integer("kpe-dim"));
  const DType dtype = o.dtype("dtype");
  if (is_fp8(dtype)) return Status::invalid_argument("--dtype: expected f16, bf16 or f32, got " + o.text("dtype"));
  std::mt19937_64 rng(ctx.seed);
  // The ckv pool and page table of a one-head paged cache of width ckv.
  const PagedKvDesc kvd{.page_size = static_cast<int>(o.integer("page-size")), .num_kv_heads = 1, .head_dim = ckv,
                        .dtype = dtype};
  test::PagedCache cache = test::make_paged_cache(
      rng, kvd, std::vector<std::int64_t>(static_cast<std::size_t>(batch), kv_len + tokens), ctx.device);
  const PagedMlaDesc desc{.page_size = kvd.page_size, .num_pages = cache.desc.num_pages, .ckv_dim = ckv,
                          .kpe_dim = kpe, .dtype = dtype};
  auto plan = PagedMlaAppendPlan::create(desc, ctx.device);
  if (!plan) return plan.status();
  test::Buffer kpe_pages(dtype, desc.num_pages * desc.page_size * kpe, ctx.device);
  const oracle::Targets targets = append_targets(cache, /*decode=*/false, kv_len, tokens);
  const std::int64_t n = static_cast<std::int64_t>(targets.batch.size());
  test::Buffer ckv_rows = random_rows(rng, dtype, n * ckv, ctx.device);
  test::Buffer kpe_rows = random_rows(rng, dtype, n * kpe, ctx.device);
  test::Buffer bi = test::int_buffer(targets.batch, ctx.device), pos = test::int_buffer(targets.position, ctx.device);
  const PagedKv table = cache.view();
  const PagedMlaAppendArgs args{
      .ckv = ckv_rows.view({n, ckv}), .kpe = kpe_rows.view({n, kpe}), .batch_indices = bi.view({n}),
      .positions = pos.view({n}),
      .cache = {.ckv_pages = cache.k.view({desc.num_pages, desc.page_size, ckv}),
                .kpe_pages = kpe_pages.view({desc.num_pages, desc.page_size, kpe}),
                .indptr = table.indptr, .indices = table.indices, .last_page_len = table.last_page_len}};

  r->shape = "B=" + std::to_string(batch) + " N=" + std::to_string(n) + " L=" + std::to_string(kv_len) + " ckv=" +
            std::to_string(ckv) + " kpe=" + std::to_string(kpe) + " page=" + std::to_string(desc.page_size) + " " +
            std::string(name_of(dtype));
  r->kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, {}, {}); }, &r->time_us));
  r->bytes = 2.0 * n * (ckv + kpe) * size_of(dtype) + 12.0 * n + 4.0 * (2 * batch + 1);
  if (ctx.check) {
    cache.k.download();
    const oracle::PoolShape shape{desc.num_pages, desc.page_size, 1, ckv};
    std::vector<double> got, ref;
    for (std::int64_t i = 0; i < std::min(n, kCheckedRows); ++i) {
      const std::int64_t at =
          oracle::paged_offset(shape, cache.indptr, cache.indices, targets.batch[i], targets.position[i], 0);
      for (int x = 0; x < ckv; ++x) {
        got.push_back(cache.k.get(at + x));
        ref.push_back(ckv_rows.get(i * ckv + x));
      }
    }
    r->set_check(test::compare(got, ref, dtype));
  }
  return Status::ok();
}

// ----------------------------------------------------------- cache-append --

Status run_cache_append(const Options& o, const BenchContext& ctx, BenchResult* r) {
  const std::int64_t batch = o.size("batch", ctx.on_gpu());
  const std::int64_t max_len = o.size("max-len", ctx.on_gpu());
  const int hkv = static_cast<int>(o.integer("num-kv-heads")), d = static_cast<int>(o.integer("head-dim"));
  const DType dtype = o.dtype("dtype");
  if (is_fp8(dtype)) return Status::invalid_argument("--dtype: expected f16, bf16 or f32, got " + o.text("dtype"));
  auto plan = KvCacheAppendPlan::create({.num_kv_heads = hkv, .head_dim = d, .dtype = dtype}, ctx.device);
  if (!plan) return plan.status();
  std::mt19937_64 rng(ctx.seed);
  // The cache's other slots are never read, so they are left as allocated.
  const std::int64_t cache_elements = batch * hkv * max_len * d;
  test::Buffer k_cache(dtype, cache_elements, ctx.device), v_cache(dtype, cache_elements, ctx.device);
  test::Buffer k = random_rows(rng, dtype, batch * hkv * d, ctx.device);
  test::Buffer v = random_rows(rng, dtype, batch * hkv * d, ctx.device);
  // A decode step: row b at a random position of batch row b.
  std::vector<std::int32_t> positions;
  for (std::int64_t b = 0; b < batch; ++b)
    positions.push_back(static_cast<std::int32_t>(std::uniform_int_distribution<std::int64_t>(0, max_len - 1)(rng)));
  test::Buffer pos = test::int_buffer(positions, ctx.device);
  const KvCacheAppendArgs args{.k = k.view({batch, hkv, d}), .v = v.view({batch, hkv, d}), .positions = pos.view({batch}),
                               .k_cache = k_cache.view({batch, hkv, max_len, d}),
                               .v_cache = v_cache.view({batch, hkv, max_len, d})};

  r->shape = "B=" + std::to_string(batch) + " L_max=" + std::to_string(max_len) + " Hkv=" + std::to_string(hkv) +
            " D=" + std::to_string(d) + " " + std::string(name_of(dtype));
  r->kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, {}, {}); }, &r->time_us));
  r->bytes = 2.0 * 2 * batch * hkv * d * size_of(dtype) + 4.0 * batch;
  if (ctx.check) {
    k_cache.download();
    std::vector<double> got, ref;
    for (std::int64_t b = 0; b < std::min(batch, kCheckedRows); ++b)
      for (int h = 0; h < hkv; ++h)
        for (int x = 0; x < d; ++x) {
          got.push_back(k_cache.get(((b * hkv + h) * max_len + positions[b]) * d + x));
          ref.push_back(k.get((b * hkv + h) * d + x));
        }
    r->set_check(test::compare(got, ref, dtype));
  }
  return Status::ok();
}

}  // namespace kvserve::cli
