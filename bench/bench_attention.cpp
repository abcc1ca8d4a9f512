// Benchmarks of the attention ops. Each entry builds its inputs from the shape
// options, times the plan, checks a few requests against the fp64 oracle and
// reports the fewest bytes the op must move and the flops of the q.k and p.v
// products over the keys each query actually sees (so a causal prefill counts
// about half of the square).
#include <algorithm>
#include <cmath>
#include <random>

#include "bench_ops.hpp"
#include "kvserve/attention.hpp"
#include "reference/attention_support.hpp"
#include "reference/compare.hpp"

namespace kvserve::cli {
namespace {

// Requests --check compares against the oracle (the oracle is naive fp64),
// and for prefill entries their last query rows only (they see the most keys).
constexpr std::int64_t kCheckedRequests = 4;
constexpr std::int64_t kCheckedQueries = 16;

// ------------------------------------------------------- shared setup --

// The heads and attention variant every entry takes.
struct Heads {
  int qo = 0, kv = 0, dim = 0;
  DType dtype = DType::bf16;  // queries and outputs
  AttentionParams attn;
  int group() const { return qo / kv; }
};

}  // namespace

std::vector<OptionSpec> with_head_options(std::vector<OptionSpec> specs) {
  specs.insert(specs.end(), {
                                {"num-qo-heads", OptKind::positive_int, "32", "query heads"},
                                {"num-kv-heads", OptKind::positive_int, "8", "KV heads"},
                                {"head-dim", OptKind::head_dim, "128", "head dimension"},
                                {"dtype", OptKind::act_dtype, "bf16", "query / output dtype"},
                                {"soft-cap", OptKind::real, "0", "logits soft-cap (0: off)"},
                                {"window-left", OptKind::integer, "-1", "sliding window (-1: off)"},
                            });
  return specs;
}

// Entries over a paged cache also take its page size, dtype and layout.
std::vector<OptionSpec> with_paged_options(std::vector<OptionSpec> specs) {
  specs.insert(specs.end(), {
                                {"page-size", OptKind::positive_int, "16", "tokens per page"},
                                {"kv-dtype", OptKind::dtype, "",
                                 "KV cache dtype (default: --dtype; an fp8 cache takes --dtype f16 or bf16 and gets scale 0.5)"},
                                {"layout", OptKind::layout, "NHD", "KV pool layout"},
                            });
  return with_head_options(std::move(specs));
}

namespace {

Status read_heads(const Options& o, Heads* h) {
  h->qo = static_cast<int>(o.integer("num-qo-heads"));
  h->kv = static_cast<int>(o.integer("num-kv-heads"));
  h->dim = static_cast<int>(o.integer("head-dim"));
  h->dtype = o.dtype("dtype");
  h->attn = {.logits_soft_cap = static_cast<float>(o.real("soft-cap")),
             .window_left = static_cast<int>(o.integer("window-left"))};
  if (h->qo % h->kv != 0)
    return Status::invalid_argument("--num-qo-heads: expected a multiple of --num-kv-heads (" + std::to_string(h->kv) +
                                    "), got " + std::to_string(h->qo));
  return Status::ok();
}

std::string heads_text(const Heads& h) {
  std::string s = "Hq=" + std::to_string(h.qo) + " Hkv=" + std::to_string(h.kv) + " D=" + std::to_string(h.dim) + " " +
                  std::string(name_of(h.dtype));
  if (h.attn.logits_soft_cap > 0) s += " cap=" + std::to_string(static_cast<int>(h.attn.logits_soft_cap));
  if (h.attn.window_left >= 0) s += " win=" + std::to_string(h.attn.window_left);
  return s;
}

oracle::AttentionSpec spec_of(const Heads& h, bool causal) {
  return test::attention_spec(h.qo, h.kv, h.dim, h.dim, h.attn, causal);
}

// A paged cache of `lens` tokens per row, pages in random order.
test::PagedCache paged_cache(const Options& o, const BenchContext& ctx, const Heads& h, std::mt19937_64& rng,
                             const std::vector<std::int64_t>& lens) {
  PagedKvDesc kvd{.page_size = static_cast<int>(o.integer("page-size")), .num_kv_heads = h.kv, .head_dim = h.dim,
                  .dtype = o.given("kv-dtype") ? o.dtype("kv-dtype") : h.dtype, .layout = o.layout("layout")};
  if (is_fp8(kvd.dtype)) kvd.k_scale = kvd.v_scale = {0.5f};
  return test::make_paged_cache(rng, kvd, lens, ctx.device);
}

std::string paged_text(const test::PagedCache& c) {
  return "page=" + std::to_string(c.desc.page_size) + " kv=" + std::string(name_of(c.desc.dtype)) + " " +
         std::string(name_of(c.desc.layout));
}

// Query positions q_len queries at the end of kv_len keys see, summed.
std::int64_t visible_pairs(std::int64_t q_len, std::int64_t kv_len, bool causal, int window_left) {
  std::int64_t pairs = 0;
  for (std::int64_t i = 0; i < q_len; ++i) {
    const std::int64_t p = i + kv_len - q_len;
    const std::int64_t hi = causal ? std::min(kv_len, p + 1) : kv_len;
    const std::int64_t lo = window_left >= 0 ? std::max<std::int64_t>(0, p - window_left) : 0;
    pairs += std::max<std::int64_t>(0, hi - lo);
  }
  return pairs;
}

// q.k (2 D flops) and p.v (2 D flops) for every visible (query, key) pair of every query head.
double attention_flops(std::int64_t pairs, const Heads& h) { return 4.0 * static_cast<double>(pairs) * h.qo * h.dim; }

// The part of one request an entry checks: its last `rows` query rows
// (starting at token row q_row0 + q_len - rows of q / out) against its keys.
struct CheckedRequest {
  std::int64_t q_row0, q_len, kv_len;
  std::vector<double> keys, values;  // [kv_len, Hkv, D]
};

// Times run() into r, then (with --check) compares the checked requests' out
// rows with the oracle.
Status time_and_check(const BenchContext& ctx, const KernelInfo& kernel, const std::function<Status()>& run,
                      const Heads& h, bool causal, const test::Buffer& q, test::Buffer& out,
                      const std::function<CheckedRequest(std::int64_t)>& checked, std::int64_t requests,
                      BenchResult* r) {
  r->kernel = kernel.key();
  KVSERVE_TRY(time_median_us(ctx, run, &r->time_us));
  if (!ctx.check) return Status::ok();
  out.download();
  const std::int64_t row = static_cast<std::int64_t>(h.qo) * h.dim;
  std::vector<double> got, ref;
  for (std::int64_t b = 0; b < std::min(requests, kCheckedRequests); ++b) {
    const CheckedRequest c = checked(b);
    const std::int64_t rows = std::min(c.q_len, kCheckedQueries), first = c.q_row0 + c.q_len - rows;
    std::vector<double> o, lse;
    oracle::attention(spec_of(h, causal), test::slice(q, first * row, rows * row), c.keys, c.values, rows, c.kv_len,
                      &o, &lse);
    test::append(&got, test::slice(out, first * row, rows * row));
    test::append(&ref, o);
  }
  const test::Comparison cmp = test::compare(got, ref, h.dtype);
  r->set_check(cmp);
  return Status::ok();
}

test::Buffer random_buffer(DType t, std::int64_t n, const BenchContext& ctx, std::mt19937_64& rng, double scale) {
  test::Buffer b(t, n, ctx.device);
  b.fill_uniform(rng, -scale, scale);
  return b;
}

test::Buffer poisoned_buffer(DType t, std::int64_t n, const BenchContext& ctx) {
  test::Buffer b(t, n, ctx.device);
  b.poison();
  return b;
}

// ---------------------------------------------------------------- decode --

}  // namespace

Status run_decode(const Options& o, const BenchContext& ctx, BenchResult* r) {
  Heads h;
  KVSERVE_TRY(read_heads(o, &h));
  const std::int64_t batch = o.size("batch", ctx.on_gpu()), kv_len = o.size("kv-len", ctx.on_gpu());
  std::mt19937_64 rng(ctx.seed);
  const test::PagedCache cache = paged_cache(o, ctx, h, rng, std::vector<std::int64_t>(batch, kv_len));
  auto plan = BatchPagedDecodePlan::create({.max_batch = static_cast<int>(batch), .num_qo_heads = h.qo,
                                            .kv = cache.desc, .q_dtype = h.dtype, .attn = h.attn},
                                           ctx.device);
  if (!plan) return plan.status();
  test::DeviceMemory ws(ctx.device, plan->workspace_bytes());
  KVSERVE_TRY(plan->prepare(cache.lengths(), test::workspace_of(ws), {}));
  const test::Buffer q = random_buffer(h.dtype, batch * h.qo * h.dim, ctx, rng, 2);
  test::Buffer res = poisoned_buffer(h.dtype, q.size(), ctx);
  const BatchPagedDecodeArgs args{.q = q.view({batch, h.qo, h.dim}), .kv = cache.view(),
                                  .out = res.view({batch, h.qo, h.dim})};

  r->shape =
      "B=" + std::to_string(batch) + " L=" + std::to_string(kv_len) + " " + heads_text(h) + " " + paged_text(cache);
  r->bytes = 2.0 * batch * kv_len * h.kv * h.dim * size_of(cache.desc.dtype) + 2.0 * q.size() * size_of(h.dtype) +
            4.0 * (cache.indices.size() + 2 * batch);
  r->flops = attention_flops(batch * visible_pairs(1, kv_len, true, h.attn.window_left), h);
  KVSERVE_TRY(time_and_check(
      ctx, plan->kernel(), [&] { return plan->run(args, test::workspace_of(ws), {}); }, h, true, q, res,
      [&](std::int64_t b) { return CheckedRequest{b, 1, kv_len, cache.keys(b), cache.values(b)}; }, batch, r));
  return Status::ok();
}

// --------------------------------------------------------- single-decode --

Status run_single_decode(const Options& o, const BenchContext& ctx, BenchResult* r) {
  Heads h;
  KVSERVE_TRY(read_heads(o, &h));
  const std::int64_t batch = o.size("batch", ctx.on_gpu()), kv_len = o.size("kv-len", ctx.on_gpu());
  std::mt19937_64 rng(ctx.seed);
  const std::int64_t cache_size = batch * h.kv * kv_len * h.dim;
  const test::Buffer k = random_buffer(h.dtype, cache_size, ctx, rng, 1);
  const test::Buffer v = random_buffer(h.dtype, cache_size, ctx, rng, 1);
  const test::Buffer q = random_buffer(h.dtype, batch * h.qo * h.dim, ctx, rng, 2);
  test::Buffer res = poisoned_buffer(h.dtype, q.size(), ctx);
  auto plan = SingleDecodePlan::create({.max_batch = static_cast<int>(batch), .num_qo_heads = h.qo,
                                        .num_kv_heads = h.kv, .head_dim = h.dim, .dtype = h.dtype, .attn = h.attn},
                                       ctx.device);
  if (!plan) return plan.status();
  test::DeviceMemory ws(ctx.device, plan->workspace_bytes());
  const SingleDecodeArgs args{.q = q.view({batch, h.qo, h.dim}), .k = k.view({batch, h.kv, kv_len, h.dim}),
                              .v = v.view({batch, h.kv, kv_len, h.dim}), .out = res.view({batch, h.qo, h.dim})};
  // The oracle takes token-major keys: [L, Hkv, D] from the cache's [Hkv, L, D].
  const auto token_major = [&](const test::Buffer& cache, std::int64_t b) {
    std::vector<double> t;
    for (std::int64_t j = 0; j < kv_len; ++j)
      for (int head = 0; head < h.kv; ++head)
        test::append(&t, test::slice(cache, ((b * h.kv + head) * kv_len + j) * h.dim, h.dim));
    return t;
  };

  r->shape = "B=" + std::to_string(batch) + " L=" + std::to_string(kv_len) + " " + heads_text(h);
  r->bytes = (2.0 * cache_size + 2.0 * q.size()) * size_of(h.dtype);
  r->flops = attention_flops(batch * visible_pairs(1, kv_len, true, h.attn.window_left), h);
  KVSERVE_TRY(time_and_check(
      ctx, plan->kernel(), [&] { return plan->run(args, test::workspace_of(ws), {}); }, h, true, q, res,
      [&](std::int64_t b) { return CheckedRequest{b, 1, kv_len, token_major(k, b), token_major(v, b)}; }, batch, r));
  return Status::ok();
}

// --------------------------------------------------------------- prefill --

// BatchRaggedPrefill: `batch` requests of seq-len queries over their own
// seq-len keys (a whole-prompt prefill).
Status run_prefill(const Options& o, const BenchContext& ctx, BenchResult* r) {
  Heads h;
  KVSERVE_TRY(read_heads(o, &h));
  const std::int64_t batch = o.size("batch", ctx.on_gpu()), len = o.size("seq-len", ctx.on_gpu());
  const bool causal = !o.flag("non-causal");
  std::mt19937_64 rng(ctx.seed);
  std::vector<std::int32_t> indptr(static_cast<std::size_t>(batch) + 1);
  for (std::int64_t b = 0; b <= batch; ++b) indptr[b] = static_cast<std::int32_t>(b * len);
  const std::int64_t total = batch * len;
  const test::Buffer q = random_buffer(h.dtype, total * h.qo * h.dim, ctx, rng, 2);
  const test::Buffer k = random_buffer(h.dtype, total * h.kv * h.dim, ctx, rng, 1);
  const test::Buffer v = random_buffer(h.dtype, total * h.kv * h.dim, ctx, rng, 1);
  test::Buffer res = poisoned_buffer(h.dtype, q.size(), ctx);
  const test::Buffer indptr_dev = test::int_buffer(indptr, ctx.device);
  auto plan = BatchRaggedPrefillPlan::create({.max_batch = static_cast<int>(batch), .num_qo_heads = h.qo,
                                              .num_kv_heads = h.kv, .head_dim = h.dim, .dtype = h.dtype,
                                              .causal = causal, .attn = h.attn},
                                             ctx.device);
  if (!plan) return plan.status();
  test::DeviceMemory ws(ctx.device, plan->workspace_bytes());
  KVSERVE_TRY(plan->prepare({indptr, indptr}, test::workspace_of(ws), {}));
  const BatchRaggedPrefillArgs args{.q = q.view({total, h.qo, h.dim}), .k = k.view({total, h.kv, h.dim}),
                                    .v = v.view({total, h.kv, h.dim}), .qo_indptr = indptr_dev.view({batch + 1}),
                                    .kv_indptr = indptr_dev.view({batch + 1}), .out = res.view({total, h.qo, h.dim})};
  const std::int64_t kv_row = static_cast<std::int64_t>(h.kv) * h.dim;

  r->shape = "B=" + std::to_string(batch) + " L=" + std::to_string(len) + " " + heads_text(h) +
            (causal ? " causal" : "");
  r->bytes = (2.0 * q.size() + k.size() + v.size()) * size_of(h.dtype) + 8.0 * (batch + 1);
  r->flops = attention_flops(batch * visible_pairs(len, len, causal, h.attn.window_left), h);
  KVSERVE_TRY(time_and_check(
      ctx, plan->kernel(), [&] { return plan->run(args, test::workspace_of(ws), {}); }, h, causal, q, res,
      [&](std::int64_t b) {
        return CheckedRequest{b * len, len, len, test::slice(k, b * len * kv_row, len * kv_row),
                              test::slice(v, b * len * kv_row, len * kv_row)};
      },
      batch, r));
  return Status::ok();
}

// --------------------------------------------------------- paged-prefill --

// BatchPagedPrefill: a chunk of q-len new tokens per request at the end of its
// kv-len cached tokens (chunked prefill).
Status run_paged_prefill(const Options& o, const BenchContext& ctx, BenchResult* r) {
  Heads h;
  KVSERVE_TRY(read_heads(o, &h));
  const std::int64_t batch = o.size("batch", ctx.on_gpu()), kv_len = o.size("kv-len", ctx.on_gpu());
  const std::int64_t q_len = o.size("q-len", ctx.on_gpu());
  if (q_len > kv_len)
    return Status::invalid_argument("--q-len: expected at most --kv-len (" + std::to_string(kv_len) + "), got " +
                                    std::to_string(q_len));
  std::mt19937_64 rng(ctx.seed);
  const test::PagedCache cache = paged_cache(o, ctx, h, rng, std::vector<std::int64_t>(batch, kv_len));
  std::vector<std::int32_t> qo_indptr(static_cast<std::size_t>(batch) + 1);
  for (std::int64_t b = 0; b <= batch; ++b) qo_indptr[b] = static_cast<std::int32_t>(b * q_len);
  const std::int64_t total_q = batch * q_len;
  const test::Buffer q = random_buffer(h.dtype, total_q * h.qo * h.dim, ctx, rng, 2);
  test::Buffer res = poisoned_buffer(h.dtype, q.size(), ctx);
  const test::Buffer qo_dev = test::int_buffer(qo_indptr, ctx.device);
  auto plan = BatchPagedPrefillPlan::create({.max_batch = static_cast<int>(batch), .num_qo_heads = h.qo,
                                             .kv = cache.desc, .q_dtype = h.dtype, .causal = true, .attn = h.attn},
                                            ctx.device);
  if (!plan) return plan.status();
  test::DeviceMemory ws(ctx.device, plan->workspace_bytes());
  KVSERVE_TRY(plan->prepare({qo_indptr, cache.lengths()}, test::workspace_of(ws), {}));
  const BatchPagedPrefillArgs args{.q = q.view({total_q, h.qo, h.dim}), .qo_indptr = qo_dev.view({batch + 1}),
                                   .kv = cache.view(), .out = res.view({total_q, h.qo, h.dim})};

  r->shape = "B=" + std::to_string(batch) + " q=" + std::to_string(q_len) + " L=" + std::to_string(kv_len) + " " +
            heads_text(h) + " " + paged_text(cache);
  r->bytes = 2.0 * batch * kv_len * h.kv * h.dim * size_of(cache.desc.dtype) + 2.0 * q.size() * size_of(h.dtype) +
            4.0 * (cache.indices.size() + 3 * batch);
  r->flops = attention_flops(batch * visible_pairs(q_len, kv_len, true, h.attn.window_left), h);
  KVSERVE_TRY(time_and_check(
      ctx, plan->kernel(), [&] { return plan->run(args, test::workspace_of(ws), {}); }, h, true, q, res,
      [&](std::int64_t b) { return CheckedRequest{b * q_len, q_len, kv_len, cache.keys(b), cache.values(b)}; },
      batch, r));
  return Status::ok();
}

// --------------------------------------------------------------- cascade --

// CascadeAttention: `groups` groups of `requests` decode requests, each group
// sharing a prefix-len prefix, each request with its own suffix-len suffix.
Status run_cascade(const Options& o, const BenchContext& ctx, BenchResult* r) {
  Heads h;
  KVSERVE_TRY(read_heads(o, &h));
  const std::int64_t groups = o.size("groups", ctx.on_gpu()), per_group = o.size("requests", ctx.on_gpu());
  const std::int64_t prefix_len = o.size("prefix-len", ctx.on_gpu());
  const std::int64_t suffix_len = o.size("suffix-len", ctx.on_gpu());
  const std::int64_t batch = groups * per_group;
  std::mt19937_64 rng(ctx.seed);
  // Cache rows 0..groups are the prefixes, the rest the suffixes.
  std::vector<std::int64_t> lens(static_cast<std::size_t>(groups), prefix_len);
  lens.resize(static_cast<std::size_t>(groups + batch), suffix_len);
  const test::PagedCache cache = paged_cache(o, ctx, h, rng, lens);
  test::PageTable prefix, suffix;
  for (std::int64_t row = 0; row < groups + batch; ++row)
    (row < groups ? prefix : suffix).add_row(test::pages_of(cache, row), cache.last_page_len[row]);
  prefix.upload(ctx.device);
  suffix.upload(ctx.device);
  std::vector<std::int32_t> group_indptr(static_cast<std::size_t>(groups) + 1);
  for (std::int64_t g = 0; g <= groups; ++g) group_indptr[g] = static_cast<std::int32_t>(g * per_group);
  const test::Buffer group_dev = test::int_buffer(group_indptr, ctx.device);
  const test::Buffer q = random_buffer(h.dtype, batch * h.qo * h.dim, ctx, rng, 2);
  test::Buffer res = poisoned_buffer(h.dtype, q.size(), ctx);
  auto plan = CascadeAttentionPlan::create(
      {.max_batch = static_cast<int>(batch), .max_groups = static_cast<int>(groups), .num_qo_heads = h.qo,
       .kv = cache.desc, .q_dtype = h.dtype, .attn = h.attn},
      ctx.device);
  if (!plan) return plan.status();
  test::DeviceMemory ws(ctx.device, plan->workspace_bytes());
  KVSERVE_TRY(plan->prepare({group_indptr, prefix.lengths(), suffix.lengths()}, test::workspace_of(ws), {}));
  const CascadeAttentionArgs args{.q = q.view({batch, h.qo, h.dim}), .group_indptr = group_dev.view({groups + 1}),
                                  .prefix = prefix.view(cache), .suffix = suffix.view(cache),
                                  .out = res.view({batch, h.qo, h.dim})};
  // Request b's keys (or values): its group's prefix, then its own suffix.
  using RowsOf = std::vector<double> (test::PagedCache::*)(std::int64_t) const;
  const auto joined = [&](std::int64_t b, RowsOf rows_of) {
    std::vector<double> t = (cache.*rows_of)(b / per_group);
    test::append(&t, (cache.*rows_of)(groups + b));
    return t;
  };

  r->shape = "G=" + std::to_string(groups) + "x" + std::to_string(per_group) + " P=" + std::to_string(prefix_len) +
            " S=" + std::to_string(suffix_len) + " " + heads_text(h) + " " + paged_text(cache);
  // Each prefix is read once per group: the saving cascade exists for.
  r->bytes = 2.0 * (groups * prefix_len + batch * suffix_len) * h.kv * h.dim * size_of(cache.desc.dtype) +
            2.0 * q.size() * size_of(h.dtype) + 4.0 * (cache.indices.size() + 3 * (groups + batch));
  r->flops = attention_flops(batch * visible_pairs(1, prefix_len + suffix_len, true, h.attn.window_left), h);
  KVSERVE_TRY(time_and_check(
      ctx, plan->kernel(), [&] { return plan->run(args, test::workspace_of(ws), {}); }, h, true, q, res,
      [&](std::int64_t b) {
        return CheckedRequest{b, 1, prefix_len + suffix_len, joined(b, &test::PagedCache::keys),
                              joined(b, &test::PagedCache::values)};
      },
      batch, r));
  return Status::ok();
}

}  // namespace kvserve::cli
