// Benchmarks of the sampling family: Sampling per filter, SamplingRenorm
// (renorm, mask), ChainSpeculativeSampling and TokenPenalty. Inputs look like
// a language model's next-token scores: logits ~ N(0, 3^2), probabilities
// their row softmax. The checks use the sorted fp64 / exact-integer oracle.
#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "bench_ops.hpp"
#include "kvserve/penalty.hpp"
#include "kvserve/speculative.hpp"
#include "reference/compare.hpp"
#include "reference/oracle_sampling.hpp"

namespace kvserve::cli {
namespace {

// Rows the --check compares against the oracle (it sorts each row).
constexpr std::int64_t kCheckedRows = 4;

struct Rows {
  std::int64_t batch = 0;
  int vocab = 0;
  std::string text() const { return "B=" + std::to_string(batch) + " V=" + std::to_string(vocab); }
};

// --batch and --vocab.
Rows rows_of(const Options& o, const BenchContext& ctx) {
  return {o.size("batch", ctx.on_gpu()), static_cast<int>(o.integer("vocab"))};
}

// n logits ~ N(0, 3^2).
std::vector<float> random_logits(std::mt19937_64& rng, std::int64_t n) {
  std::normal_distribution<float> normal(0.f, 3.f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (float& v : x) v = normal(rng);
  return x;
}

// The softmax of every row, in fp64 then rounded.
std::vector<float> softmax_rows(const std::vector<float>& logits, int vocab) {
  std::vector<float> p(logits.size());
  for (std::size_t start = 0; start < logits.size(); start += static_cast<std::size_t>(vocab)) {
    const std::vector<double> row(logits.begin() + static_cast<std::ptrdiff_t>(start),
                                  logits.begin() + static_cast<std::ptrdiff_t>(start) + vocab);
    const std::vector<double> s = oracle::softmax(row, 1.0);
    for (int j = 0; j < vocab; ++j) p[start + static_cast<std::size_t>(j)] = static_cast<float>(s[j]);
  }
  return p;
}

test::Buffer upload(DType dtype, const std::vector<double>& values, Device device) {
  test::Buffer b(dtype, static_cast<std::int64_t>(values.size()), device);
  for (std::size_t i = 0; i < values.size(); ++i) b.set(static_cast<std::int64_t>(i), values[i]);
  b.upload();
  return b;
}
test::Buffer upload(const std::vector<float>& values, Device device) {
  return upload(DType::f32, std::vector<double>(values.begin(), values.end()), device);
}

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::vector<double> row_of(const std::vector<float>& v, std::int64_t b, int vocab) {
  return {v.begin() + b * vocab, v.begin() + (b + 1) * vocab};
}

// The oracle's kept tokens of a row of probabilities.
std::vector<bool> kept_by_oracle(const std::vector<double>& probs, const oracle::Truncation& t) {
  std::vector<std::uint64_t> weight(probs.size());
  for (std::size_t j = 0; j < probs.size(); ++j) weight[j] = oracle::fixed_weight(probs[j]);
  return oracle::kept_tokens(probs, weight, t);
}

void set_check(BenchResult* r, std::int64_t bad, std::int64_t checked, const std::string& what) {
  r->check_ok = bad == 0;
  r->check = (bad == 0 ? "ok: " : "FAIL: " + std::to_string(bad) + " of ") + std::to_string(checked) + " " + what;
}

}  // namespace

std::vector<OptionSpec> rows_options(std::int64_t gpu_batch, std::int64_t cpu_batch, std::vector<OptionSpec> more) {
  std::vector<OptionSpec> opts = {
      size_option("batch", "rows", gpu_batch, cpu_batch),
      {"vocab", OptKind::positive_int, "128256", "vocabulary size"},
  };
  opts.insert(opts.end(), more.begin(), more.end());
  return opts;
}

// ---------------------------------------------------------------- Sampling --

Status run_sampling(SamplingFilter filter, const Options& o, const BenchContext& ctx, BenchResult* r) {
  const Rows rows = rows_of(o, ctx);
  SamplingDesc desc{.vocab = rows.vocab, .max_batch = static_cast<int>(rows.batch), .filter = filter};
  std::string params;
  if (o.given("top-k") || filter == SamplingFilter::top_k || filter == SamplingFilter::top_k_top_p) {
    desc.top_k = static_cast<int>(o.integer("top-k"));
    params += " k=" + std::to_string(desc.top_k);
  }
  if (filter == SamplingFilter::top_p || filter == SamplingFilter::top_k_top_p) {
    desc.top_p = static_cast<float>(o.real("top-p"));
    params += " p=" + number_text(desc.top_p);
  }
  if (filter == SamplingFilter::min_p) {
    desc.min_p = static_cast<float>(o.real("min-p"));
    params += " min_p=" + number_text(desc.min_p);
  }
  if (filter == SamplingFilter::top_k_top_p) {
    const std::string order = o.text("order");
    if (order != "k_then_p" && order != "joint")
      return Status::invalid_argument("--order: expected k_then_p or joint, got '" + order + "'");
    desc.order = order == "joint" ? TopKTopPOrder::joint : TopKTopPOrder::k_then_p;
    params += " " + order;
  }
  auto plan = SamplingPlan::create(desc, ctx.device);
  if (!plan) return plan.status();

  std::mt19937_64 rng(ctx.seed);
  const std::vector<float> probs = softmax_rows(random_logits(rng, rows.batch * rows.vocab), rows.vocab);
  // Runs rotate over copies of the batch, so that more than twice the L2 is
  // read between two uses of a row: every timed run reads device memory.
  const std::int64_t batch_floats = rows.batch * rows.vocab;
  const auto copies = std::max<std::int64_t>(
      1, static_cast<std::int64_t>(std::ceil(2.0 * static_cast<double>(l2_cache_bytes(ctx.device)) /
                                             (4.0 * static_cast<double>(batch_floats)))));
  std::vector<float> replicated;
  replicated.reserve(static_cast<std::size_t>(copies * batch_floats));
  for (std::int64_t c = 0; c < copies; ++c) replicated.insert(replicated.end(), probs.begin(), probs.end());
  const test::Buffer in = upload(replicated, ctx.device);
  test::Buffer tokens(DType::int32, rows.batch, ctx.device);
  tokens.poison();
  std::uint64_t step = 0;  // a fresh offset every run, as a serving loop would
  r->shape = rows.text() + params + " f32 probs";
  r->kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] {
    TensorView input = in.view({rows.batch, rows.vocab});
    input.data = static_cast<float*>(input.data) + static_cast<std::int64_t>(step % copies) * batch_floats;
    return plan->run({.input = input, .out = tokens.view({rows.batch}), .seed = ctx.seed, .offset = step++}, {}, {});
  }, &r->time_us));
  r->bytes = 4.0 * rows.batch * rows.vocab + 4.0 * rows.batch;  // each probability read once, one token written
  r->flops = static_cast<double>(rows.batch) * rows.vocab;     // one accumulation per probability
  if (ctx.check) {
    test::synchronize(ctx.device);
    tokens.download();
    const oracle::Truncation t{desc.filter, desc.order, desc.top_k, desc.top_p, desc.min_p};
    std::int64_t bad = 0, checked = std::min(rows.batch, kCheckedRows);
    for (std::int64_t b = 0; b < checked; ++b) {
      const auto token = static_cast<std::int64_t>(tokens.get(b));
      bad += token < 0 || token >= rows.vocab || !kept_by_oracle(row_of(probs, b, rows.vocab), t)[token];
    }
    set_check(r, bad, checked, "tokens in the oracle's kept set");
  }
  return Status::ok();
}


// ---------------------------------------------------------- SamplingRenorm --

Status run_renorm(bool mask, const Options& o, const BenchContext& ctx, BenchResult* r) {
  const Rows rows = rows_of(o, ctx);
  SamplingRenormDesc desc{.vocab = rows.vocab, .max_batch = static_cast<int>(rows.batch),
                          .top_k = static_cast<int>(o.integer("top-k"))};
  std::string params = " k=" + std::to_string(desc.top_k);
  if (mask) {
    desc.kind = RenormKind::top_k_mask_logits;
  } else {
    const std::string kind = o.text("kind");
    if (kind != "top-k" && kind != "top-p")
      return Status::invalid_argument("--kind: expected top-k or top-p, got '" + kind + "'");
    if (kind == "top-p") {
      desc.kind = RenormKind::top_p_renorm_probs;
      desc.top_p = static_cast<float>(o.real("top-p"));
      params = " p=" + number_text(desc.top_p);
    }
  }
  auto plan = SamplingRenormPlan::create(desc, ctx.device);
  if (!plan) return plan.status();

  std::mt19937_64 rng(ctx.seed);
  const std::vector<float> logits = random_logits(rng, rows.batch * rows.vocab);
  const std::vector<float> input = mask ? logits : softmax_rows(logits, rows.vocab);
  const test::Buffer in = upload(input, ctx.device);
  test::Buffer res(DType::f32, rows.batch * rows.vocab, ctx.device);
  res.poison();
  const SamplingRenormArgs args{.input = in.view({rows.batch, rows.vocab}), .out = res.view({rows.batch, rows.vocab})};
  r->shape = rows.text() + " " + std::string(name_of(desc.kind)) + params;
  r->kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, {}, {}); }, &r->time_us));
  r->bytes = 8.0 * rows.batch * rows.vocab;                // each row read once and written once
  r->flops = static_cast<double>(rows.batch) * rows.vocab;  // one division (or select) per element
  if (ctx.check) {
    test::synchronize(ctx.device);
    res.download();
    const oracle::Truncation t{mask || desc.kind == RenormKind::top_k_renorm_probs ? SamplingFilter::top_k
                                                                                  : SamplingFilter::top_p,
                               {}, desc.top_k, desc.top_p};
    std::vector<double> got, want;
    for (std::int64_t b = 0; b < std::min(rows.batch, kCheckedRows); ++b) {
      const std::vector<double> row = row_of(input, b, rows.vocab);
      std::vector<bool> kept;
      if (mask) {
        kept = oracle::kept_tokens(row, std::vector<std::uint64_t>(row.size(), 1), t);
        for (std::size_t j = 0; j < row.size(); ++j) want.push_back(kept[j] ? row[j] : -INFINITY);
      } else {
        const std::vector<double> p = oracle::truncated_distribution(kept_by_oracle(row, t), row);
        want.insert(want.end(), p.begin(), p.end());
      }
      for (int j = 0; j < rows.vocab; ++j) got.push_back(res.get(b * rows.vocab + j));
    }
    const test::Comparison c = test::compare(got, want, DType::f32);
    r->set_check(c);
  }
  return Status::ok();
}

// ------------------------------------------------ ChainSpeculativeSampling --

Status run_spec_verify(const Options& o, const BenchContext& ctx, BenchResult* r) {
  const Rows rows = rows_of(o, ctx);
  const int n = static_cast<int>(o.integer("num-draft"));
  const ChainSpeculativeSamplingDesc desc{.vocab = rows.vocab, .max_batch = static_cast<int>(rows.batch),
                                          .num_draft_tokens = n};
  auto plan = ChainSpeculativeSamplingPlan::create(desc, ctx.device);
  if (!plan) return plan.status();

  // The draft is the target's logits plus noise, so that drafts often pass.
  std::mt19937_64 rng(ctx.seed);
  const std::int64_t b_count = rows.batch;
  std::vector<float> target_logits = random_logits(rng, b_count * (n + 1) * rows.vocab), draft_logits;
  std::normal_distribution<float> noise(0.f, 0.5f);
  for (std::int64_t b = 0; b < b_count; ++b)
    for (int t = 0; t < n; ++t)
      for (int j = 0; j < rows.vocab; ++j)
        draft_logits.push_back(target_logits[(b * (n + 1) + t) * rows.vocab + j] + noise(rng));
  const std::vector<float> target = softmax_rows(target_logits, rows.vocab);
  const std::vector<float> draft = softmax_rows(draft_logits, rows.vocab);
  std::vector<double> ids;
  for (std::int64_t b = 0; b < b_count; ++b)
    for (int t = 0; t < n; ++t) {  // the draft's top token
      const auto first = draft.begin() + (b * n + t) * rows.vocab;
      ids.push_back(static_cast<double>(std::max_element(first, first + rows.vocab) - first));
    }
  const test::Buffer ids_buffer = upload(DType::int32, ids, ctx.device), draft_buffer = upload(draft, ctx.device),
                     target_buffer = upload(target, ctx.device);
  test::Buffer res(DType::int32, b_count * (n + 1), ctx.device), emitted(DType::int32, b_count, ctx.device);
  res.poison();
  std::uint64_t step = 0;
  r->shape = rows.text() + " n=" + std::to_string(n) + " f32";
  r->kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] {
    return plan->run({.draft_token_ids = ids_buffer.view({b_count, n}),
                      .draft_probs = draft_buffer.view({b_count, n, rows.vocab}),
                      .target_probs = target_buffer.view({b_count, n + 1, rows.vocab}),
                      .out = res.view({b_count, n + 1}), .emitted = emitted.view({b_count}),
                      .seed = ctx.seed, .offset = step++}, {}, {});
  }, &r->time_us));
  // At least: one draw over a target row and its draft row per request.
  r->bytes = 8.0 * b_count * rows.vocab + 4.0 * b_count * (2 * n + 1);
  r->flops = 2.0 * b_count * rows.vocab;
  if (ctx.check) {
    // Each row: the emitted drafts, then a token the target (or the residual) can give, then -1.
    test::synchronize(ctx.device);
    res.download();
    emitted.download();
    std::int64_t bad = 0;
    for (std::int64_t b = 0; b < b_count; ++b) {
      const auto e = static_cast<int>(emitted.get(b));
      bool ok = e >= 0 && e <= n;
      for (int t = 0; ok && t <= n; ++t) {
        const auto token = static_cast<std::int64_t>(res.get(b * (n + 1) + t));
        if (t < e) ok = token == static_cast<std::int64_t>(ids[b * n + t]);
        else if (t > e) ok = token == -1;
        else ok = token >= 0 && token < rows.vocab && target[(b * (n + 1) + t) * rows.vocab + token] > 0;
      }
      bad += !ok;
    }
    set_check(r, bad, b_count, "rows well formed");
  }
  return Status::ok();
}

// ------------------------------------------------------------ TokenPenalty --

Status run_penalty(const Options& o, const BenchContext& ctx, BenchResult* r) {
  const Rows rows = rows_of(o, ctx);
  const std::int64_t len = o.integer("history-len");
  const std::string history = o.text("history");
  if (history != "ids" && history != "counts")
    return Status::invalid_argument("--history: expected ids or counts, got '" + history + "'");
  const bool by_ids = history == "ids";
  const TokenPenaltyDesc desc{.vocab = rows.vocab, .max_batch = static_cast<int>(rows.batch),
                              .history = by_ids ? PenaltyHistory::token_ids : PenaltyHistory::token_counts,
                              .repetition = 1.2f, .frequency = 0.1f, .presence = 0.2f};
  auto plan = TokenPenaltyPlan::create(desc, ctx.device);
  if (!plan) return plan.status();

  std::mt19937_64 rng(ctx.seed);
  const std::vector<float> logits = random_logits(rng, rows.batch * rows.vocab);
  std::vector<double> ids, counts(static_cast<std::size_t>(rows.batch * rows.vocab), 0);
  std::int64_t seen = 0;
  for (std::int64_t b = 0; b < rows.batch; ++b)
    for (std::int64_t i = 0; i < len; ++i) {
      const auto id = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(rows.vocab));
      ids.push_back(static_cast<double>(id));
      seen += counts[b * rows.vocab + id]++ == 0;
    }
  test::Buffer x = upload(logits, ctx.device);
  const test::Buffer hist = upload(DType::int32, by_ids ? ids : counts, ctx.device);
  TokenPenaltyArgs args{.logits = x.view({rows.batch, rows.vocab})};
  if (by_ids) args.token_ids = hist.view({rows.batch, len});
  else args.counts = hist.view({rows.batch, rows.vocab});
  r->shape = rows.text() + " history=" + std::to_string(len) + " " + history + " in place";
  r->kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, {}, {}); }, &r->time_us));
  // The history read once, the logits of the seen tokens read and written.
  r->bytes = 4.0 * (by_ids ? rows.batch * len : rows.batch * rows.vocab) + 8.0 * seen;
  r->flops = 4.0 * seen;
  if (ctx.check) {
    // The timed runs penalised x many times: restore it and run once more.
    x.upload();
    KVSERVE_TRY(plan->run(args, {}, {}));
    test::synchronize(ctx.device);
    x.download();
    std::vector<double> got, want;
    for (std::int64_t b = 0; b < std::min(rows.batch, kCheckedRows); ++b) {
      const std::vector<std::int64_t> row_counts(counts.begin() + b * rows.vocab,
                                                 counts.begin() + (b + 1) * rows.vocab);
      const std::vector<double> w = oracle::penalised_logits(row_of(logits, b, rows.vocab), row_counts,
                                                             desc.repetition, desc.frequency, desc.presence);
      want.insert(want.end(), w.begin(), w.end());
      for (int j = 0; j < rows.vocab; ++j) got.push_back(x.get(b * rows.vocab + j));
    }
    const test::Comparison c = test::compare(got, want, DType::f32);
    r->set_check(c);
  }
  return Status::ok();
}

}  // namespace kvserve::cli
