// Benchmarks of RmsNorm: plain (or Gemma), fused add, and per-head QK norm.
#include <random>

#include "bench_ops.hpp"
#include "kvserve/norm.hpp"
#include "reference/compare.hpp"
#include "reference/oracle_norm.hpp"

namespace kvserve::cli {
namespace {

// The rows one run normalises and where they live: rows of a [tokens, hidden]
// tensor, or for QK norm the q heads of a fused projection
// [tokens, (q_heads + 2 kv_heads) * head_dim], normalised in place.
struct NormShape {
  std::int64_t tokens = 0, heads = 1;
  int hidden = 0;               // row length (head_dim for QK norm)
  std::int64_t row_width = 0;  // elements per token in the x buffer
  std::int64_t rows() const { return tokens * heads; }
};

}  // namespace

Status run_norm(NormVariant variant, const Options& o, const BenchContext& ctx, BenchResult* r) {
  const DType dtype = o.dtype("dtype");
  NormShape shape;
  shape.tokens = o.size("tokens", ctx.on_gpu());
  if (variant == NormVariant::qk) {
    shape.heads = o.integer("num-heads");
    shape.hidden = static_cast<int>(o.integer("head-dim"));
    shape.row_width = (shape.heads + 2 * o.integer("num-kv-heads")) * shape.hidden;
  } else {
    shape.hidden = static_cast<int>(o.size("hidden", ctx.on_gpu()));
    shape.row_width = shape.hidden;
  }
  const bool fused = variant == NormVariant::fused_add, in_place = variant == NormVariant::qk;
  const RmsNormDesc desc{.hidden_size = shape.hidden, .dtype = dtype, .eps = static_cast<float>(o.real("eps")),
                         .weight_offset = o.flag("gemma") ? 1.f : 0.f, .fused_add = fused};
  auto plan = RmsNormPlan::create(desc, ctx.device);
  if (!plan) return plan.status();

  std::mt19937_64 rng(ctx.seed);
  const std::int64_t n = shape.tokens * shape.row_width;
  test::Buffer x(dtype, n, ctx.device), w(dtype, shape.hidden, ctx.device),
      residual(dtype, fused ? n : 0, ctx.device), y(dtype, in_place ? 0 : n, ctx.device);
  x.fill_uniform(rng, -2, 2);
  w.fill_uniform(rng, -1, 1);
  residual.fill_uniform(rng, -2, 2);
  const TensorView rows_view =
      variant == NormVariant::qk
          ? x.view_strided({shape.tokens, shape.heads, shape.hidden}, {shape.row_width, shape.hidden, 1})
          : x.view({shape.tokens, shape.hidden});
  RmsNormArgs args{.x = rows_view, .weight = w.view({shape.hidden}), .out = rows_view};
  if (fused) args.residual = residual.view({shape.tokens, shape.hidden});
  if (!in_place) args.out = y.view({shape.tokens, shape.hidden});

  if (o.flag("gemma")) r->op = "gemma-" + r->op;
  r->shape = "tokens=" + std::to_string(shape.tokens) +
            (variant == NormVariant::qk ? " heads=" + std::to_string(shape.heads) + " D=" : " H=") +
            std::to_string(shape.hidden) + " " + std::string(name_of(dtype)) + (in_place ? " in place" : "");
  r->kernel = plan->kernel().key();
  KVSERVE_TRY(time_median_us(ctx, [&] { return plan->run(args, {}, {}); }, &r->time_us));
  // Every row read once and written once (x -> out, or in place), the weight
  // once; fused add also reads and writes the residual.
  const double row_bytes = static_cast<double>(shape.rows()) * shape.hidden * size_of(dtype);
  r->bytes = (fused ? 4 : 2) * row_bytes + shape.hidden * size_of(dtype);
  // Per element: square-accumulate (2), scale and weight (2), and the add.
  r->flops = static_cast<double>(shape.rows()) * shape.hidden * (fused ? 5 : 4);

  if (ctx.check) {
    // The timed runs changed x (in place) or the residual: restore both from
    // the host copies (still the original values) and run once more.
    const std::vector<double> x_before = x.values(), residual_before = residual.values();
    x.upload();
    residual.upload();
    KVSERVE_TRY(plan->run(args, {}, {}));
    test::synchronize(ctx.device);
    x.download();
    y.download();
    residual.download();
    const test::Buffer& result = in_place ? x : y;
    std::vector<double> rows_in, got;
    for (std::int64_t t = 0; t < shape.tokens; ++t)
      for (std::int64_t c = 0; c < shape.heads * shape.hidden; ++c) {
        rows_in.push_back(x_before[t * shape.row_width + c]);
        got.push_back(result.get(in_place ? t * shape.row_width + c : t * shape.hidden + c));
      }
    const oracle::RmsNormSpec spec{.hidden = shape.hidden, .eps = desc.eps, .weight_offset = desc.weight_offset};
    test::Comparison c;
    if (fused) {
      std::vector<double> ref_residual = residual_before;
      c = test::compare(got, oracle::fused_add_rms_norm(spec, dtype, rows_in, &ref_residual, w.values()), dtype);
      const test::Comparison c_residual = test::compare(residual.values(), ref_residual, dtype);
      if (c_residual.failures > 0) c = c_residual;
    } else {
      c = test::compare(got, oracle::rms_norm(spec, rows_in, w.values()), dtype);
    }
    r->set_check(c);
  }
  return Status::ok();
}

std::vector<OptionSpec> norm_options(NormVariant variant) {
  std::vector<OptionSpec> opts = {
      size_option("tokens", "tokens", 4096, 256),
      {"dtype", OptKind::act_dtype, "bf16", "x, weight and output dtype"},
      {"eps", OptKind::real, "1e-6", "added to mean(x^2)"},
      {"gemma", OptKind::flag, "", "Gemma weights: y = n * (1 + w)"},
  };
  if (variant == NormVariant::qk) {
    opts.push_back({"num-heads", OptKind::positive_int, "32", "q heads normalised per token"});
    opts.push_back({"num-kv-heads", OptKind::positive_int, "8", "kv heads beside them in the fused qkv rows"});
    opts.push_back({"head-dim", OptKind::head_dim, "128", "head dimension (the normalised row)"});
  } else {
    opts.push_back(size_option("hidden", "hidden size", 8192, 4096));
  }
  return opts;
}

}  // namespace kvserve::cli
