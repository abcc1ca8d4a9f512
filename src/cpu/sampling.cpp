// CPU kernels for Sampling and SamplingRenorm: load a row's codes and weights,
// find the filter's kept set by selection passes, then draw or rewrite the row.
#include "core/backend_kernels.hpp"
#include "cpu/cpu_info.hpp"
#include "cpu/sampling_core.hpp"

namespace kvserve::detail {

namespace {

// A row's filter parameters, from the descriptor or the per-row tensors.
struct RowParams {
  float temperature = 1.f;
  std::int32_t top_k = 0;
  float top_p = 1.f;
  float min_p = 0.f;
};

// Reads a per-row tensor's entry b, or returns `scalar` when the tensor is absent.
template <class T>
T row_value(const TensorView& t, std::int64_t b, T scalar) {
  return t.defined() ? t.ptr<T>()[b] : scalar;
}

RowParams row_params(const SamplingDesc& d, const SamplingArgs& a, std::int64_t b) {
  return {row_value(a.temperature, b, d.temperature), row_value(a.top_k, b, std::int32_t{d.top_k}),
          row_value(a.top_p, b, d.top_p), row_value(a.min_p, b, d.min_p)};
}

KeptSet kept_set(const SamplingDesc& d, const RowParams& r, cpu::WeightedRow& row) {
  switch (d.filter) {
    case SamplingFilter::top_k: return cpu::top_k_set(row, effective_top_k(r.top_k, d.vocab));
    case SamplingFilter::top_p: return cpu::top_p_set(row, top_p_target(r.top_p, row.total));
    case SamplingFilter::min_p: return cpu::min_weight_set(row, ceil_fraction(row.max_weight, r.min_p));
    case SamplingFilter::top_k_top_p: {
      const KeptSet by_k = cpu::top_k_set(row, effective_top_k(r.top_k, d.vocab));
      const std::uint64_t base = d.order == TopKTopPOrder::k_then_p ? by_k.mass : row.total;
      return higher_cut(by_k, cpu::top_p_set(row, top_p_target(r.top_p, base)));
    }
    case SamplingFilter::none:
    case SamplingFilter::greedy: break;
  }
  return cpu::everything(row);
}

std::int32_t sample_row(const SamplingDesc& d, const SamplingArgs& a, std::int64_t b, cpu::WeightedRow& row) {
  const float* x = a.input.ptr<float>() + b * a.input.strides[0];
  const RowParams r = row_params(d, a, b);
  const bool logits = d.input == SamplingInput::logits;
  if (d.filter == SamplingFilter::greedy || (logits && !samples_at(r.temperature))) {
    if (logits) cpu::load_candidates(x, d.vocab, &row);
    else cpu::load_probs(x, d.vocab, &row);
    return cpu::top_token(row);
  }
  if (logits) cpu::load_logits(x, d.vocab, r.temperature, &row);
  else cpu::load_probs(x, d.vocab, &row);
  return cpu::draw(row, kept_set(d, r, row), draw_bits(cpu::row_random_block(d.random, a, b, 0)));
}

// Cost of one row in rough operations: a few passes over the vocabulary.
std::int64_t row_cost(int vocab) { return 8 * static_cast<std::int64_t>(vocab); }

Status run_sampling(const PlanState<Sampling>& p, const SamplingArgs& a, Workspace, Stream) {
  std::int32_t* out = a.out.ptr<std::int32_t>();
  cpu::for_each_row(a.input.shape[0], row_cost(p.desc.vocab),
                    [&](std::int64_t b, cpu::WeightedRow& row) { out[b] = sample_row(p.desc, a, b, row); });
  return Status::ok();
}

void renorm_row(const SamplingRenormDesc& d, const SamplingRenormArgs& a, std::int64_t b, cpu::WeightedRow& row) {
  const float* x = a.input.ptr<float>() + b * a.input.strides[0];
  float* y = a.out.ptr<float>() + b * a.out.strides[0];  // may be x: each element is read before it is written
  const std::uint64_t k = effective_top_k(row_value(a.top_k, b, std::int32_t{d.top_k}), d.vocab);
  if (d.kind == RenormKind::top_k_mask_logits) {
    cpu::load_candidates(x, d.vocab, &row);
    cpu::visit(row, cpu::top_k_set(row, k), [&](std::int32_t j, bool keep) {
      y[j] = keep ? x[j] : -INFINITY;
      return true;
    });
    return;
  }
  cpu::load_probs(x, d.vocab, &row);
  const KeptSet kept = d.kind == RenormKind::top_k_renorm_probs
                           ? cpu::top_k_set(row, k)
                           : cpu::top_p_set(row, top_p_target(row_value(a.top_p, b, d.top_p), row.total));
  const float mass = weight_to_float(kept.mass);
  cpu::visit(row, kept, [&](std::int32_t j, bool keep) {
    y[j] = keep ? x[j] / mass : 0.f;
    return true;
  });
}

Status run_renorm(const PlanState<SamplingRenorm>& p, const SamplingRenormArgs& a, Workspace, Stream) {
  cpu::for_each_row(a.input.shape[0], row_cost(p.desc.vocab),
                    [&](std::int64_t b, cpu::WeightedRow& row) { renorm_row(p.desc, a, b, row); });
  return Status::ok();
}

}  // namespace

template <>
Result<Kernel<Sampling>> cpu_kernel<Sampling>(const SamplingDesc& d) {
  return cpu::make_kernel<Sampling>(
      cpu::config("input", d.input, "filter", d.filter, "params", d.params, "random", d.random), run_sampling);
}

template <>
Result<Kernel<SamplingRenorm>> cpu_kernel<SamplingRenorm>(const SamplingRenormDesc& d) {
  return cpu::make_kernel<SamplingRenorm>(cpu::config("kind", d.kind, "params", d.params), run_renorm);
}

}  // namespace kvserve::detail
