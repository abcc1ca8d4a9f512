// CPU kernel for TokenPenalty: each row's seen tokens, then the three
// penalties on their logits in the documented order.
#include <algorithm>
#include <cmath>

#include "core/backend_kernels.hpp"
#include "cpu/cpu_info.hpp"
#include "cpu/parallel.hpp"
#include "kvserve/penalty.hpp"

namespace kvserve::detail {

namespace {

struct Penalties {
  float repetition, frequency, presence;
};

float penalised(float x, std::int32_t count, const Penalties& p) {
  x = x > 0.f ? x / p.repetition : x * p.repetition;
  x = std::fma(-p.frequency, static_cast<float>(count), x);
  return x - p.presence;
}

void penalise_row(const TokenPenaltyDesc& d, const TokenPenaltyArgs& a, std::int64_t b) {
  float* logits = a.logits.ptr<float>() + b * a.logits.strides[0];
  const auto per_row = [&](const TensorView& t, float scalar) {
    return d.params == ParamSource::per_row ? t.ptr<float>()[b] : scalar;
  };
  const Penalties p{per_row(a.repetition, d.repetition), per_row(a.frequency, d.frequency),
                    per_row(a.presence, d.presence)};
  if (d.history == PenaltyHistory::token_counts) {
    const std::int32_t* counts = a.counts.ptr<std::int32_t>() + b * a.counts.strides[0];
    for (int j = 0; j < d.vocab; ++j)
      if (counts[j] > 0) logits[j] = penalised(logits[j], counts[j], p);
    return;
  }
  // Count the history's valid ids, then penalise each distinct id once.
  const std::int64_t len = a.token_ids.shape[1];
  const std::int32_t* ids = a.token_ids.ptr<std::int32_t>() + b * a.token_ids.strides[0];
  std::vector<std::int32_t> seen;
  seen.reserve(static_cast<std::size_t>(len));
  for (std::int64_t i = 0; i < len; ++i) {
    const std::int32_t id = ids[i * a.token_ids.strides[1]];
    if (id >= 0 && id < d.vocab) seen.push_back(id);
  }
  std::sort(seen.begin(), seen.end());
  for (std::size_t i = 0; i < seen.size();) {
    std::size_t end = i;
    while (end < seen.size() && seen[end] == seen[i]) ++end;
    logits[seen[i]] = penalised(logits[seen[i]], static_cast<std::int32_t>(end - i), p);
    i = end;
  }
}

Status run_penalty(const PlanState<TokenPenalty>& p, const TokenPenaltyArgs& a, Workspace, Stream) {
  cpu::parallel_for(a.logits.shape[0], 2 * static_cast<std::int64_t>(p.desc.vocab),
                    [&](std::int64_t b) { penalise_row(p.desc, a, b); });
  return Status::ok();
}

}  // namespace

template <>
Result<Kernel<TokenPenalty>> cpu_kernel<TokenPenalty>(const TokenPenaltyDesc& d) {
  return cpu::make_kernel<TokenPenalty>(cpu::config("history", d.history, "params", d.params), run_penalty);
}

}  // namespace kvserve::detail
