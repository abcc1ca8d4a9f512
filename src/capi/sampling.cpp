// C ABI of the sampling family: sampling, renormalisation, speculative
// verification and token penalties.
#include "capi/capi.hpp"
#include "kvserve/penalty.hpp"
#include "kvserve/sampling.hpp"
#include "kvserve/speculative.hpp"

using namespace kvserve;

static_assert(KVS_SAMPLING_INPUT_PROBS == static_cast<int>(SamplingInput::probs) &&
              KVS_SAMPLING_INPUT_LOGITS == static_cast<int>(SamplingInput::logits));
static_assert(KVS_FILTER_NONE == static_cast<int>(SamplingFilter::none) &&
              KVS_FILTER_TOP_K == static_cast<int>(SamplingFilter::top_k) &&
              KVS_FILTER_TOP_P == static_cast<int>(SamplingFilter::top_p) &&
              KVS_FILTER_MIN_P == static_cast<int>(SamplingFilter::min_p) &&
              KVS_FILTER_TOP_K_TOP_P == static_cast<int>(SamplingFilter::top_k_top_p) &&
              KVS_FILTER_GREEDY == static_cast<int>(SamplingFilter::greedy));
static_assert(KVS_ORDER_K_THEN_P == static_cast<int>(TopKTopPOrder::k_then_p) &&
              KVS_ORDER_JOINT == static_cast<int>(TopKTopPOrder::joint));
static_assert(KVS_PARAMS_SCALAR == static_cast<int>(ParamSource::scalar) &&
              KVS_PARAMS_PER_ROW == static_cast<int>(ParamSource::per_row));
static_assert(KVS_RANDOM_HOST == static_cast<int>(RandomSource::host) &&
              KVS_RANDOM_PER_ROW == static_cast<int>(RandomSource::per_row));
static_assert(KVS_TOP_K_RENORM_PROBS == static_cast<int>(RenormKind::top_k_renorm_probs) &&
              KVS_TOP_P_RENORM_PROBS == static_cast<int>(RenormKind::top_p_renorm_probs) &&
              KVS_TOP_K_MASK_LOGITS == static_cast<int>(RenormKind::top_k_mask_logits));
static_assert(KVS_HISTORY_TOKEN_COUNTS == static_cast<int>(PenaltyHistory::token_counts) &&
              KVS_HISTORY_TOKEN_IDS == static_cast<int>(PenaltyHistory::token_ids));

struct kvs_sampling_plan : capi::PlanHandle<Sampling> {};
struct kvs_sampling_renorm_plan : capi::PlanHandle<SamplingRenorm> {};
struct kvs_chain_speculative_sampling_plan : capi::PlanHandle<ChainSpeculativeSampling> {};
struct kvs_token_penalty_plan : capi::PlanHandle<TokenPenalty> {};

// The C++ run arguments of each op (KVS_CAPI_PLAN_COMMON's run and can_implement).
namespace {

auto to_args(const kvs_sampling_args& a) {
  return SamplingArgs{.input = capi::to_view(a.input), .out = capi::to_view(a.out),
                      .temperature = capi::to_view(a.temperature), .top_k = capi::to_view(a.top_k),
                      .top_p = capi::to_view(a.top_p), .min_p = capi::to_view(a.min_p), .seed = a.seed,
                      .offset = a.offset, .seeds = capi::to_view(a.seeds), .offsets = capi::to_view(a.offsets)};
}

auto to_args(const kvs_sampling_renorm_args& a) {
  return SamplingRenormArgs{.input = capi::to_view(a.input), .out = capi::to_view(a.out),
                            .top_k = capi::to_view(a.top_k), .top_p = capi::to_view(a.top_p)};
}

auto to_args(const kvs_chain_speculative_sampling_args& a) {
  return ChainSpeculativeSamplingArgs{
      .draft_token_ids = capi::to_view(a.draft_token_ids),
      .draft_probs = capi::to_view(a.draft_probs), .target_probs = capi::to_view(a.target_probs),
      .out = capi::to_view(a.out), .accepted = capi::to_view(a.accepted),
      .emitted = capi::to_view(a.emitted), .seed = a.seed, .offset = a.offset,
      .seeds = capi::to_view(a.seeds), .offsets = capi::to_view(a.offsets)};
}

auto to_args(const kvs_token_penalty_args& a) {
  return TokenPenaltyArgs{.logits = capi::to_view(a.logits), .counts = capi::to_view(a.counts),
                          .token_ids = capi::to_view(a.token_ids), .repetition = capi::to_view(a.repetition),
                          .frequency = capi::to_view(a.frequency), .presence = capi::to_view(a.presence)};
}

}  // namespace

extern "C" {

kvs_status_code kvs_sampling_create(const kvs_sampling_desc* desc, kvs_device device, kvs_sampling_plan** plan,
                                    kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_sampling_desc& d) {
    return SamplingDesc{.vocab = d.vocab, .max_batch = d.max_batch, .input = capi::to_enum<SamplingInput>(d.input),
                        .filter = capi::to_enum<SamplingFilter>(d.filter),
                        .order = capi::to_enum<TopKTopPOrder>(d.order), .temperature = d.temperature,
                        .top_k = d.top_k, .top_p = d.top_p, .min_p = d.min_p,
                        .params = capi::to_enum<ParamSource>(d.params),
                        .random = capi::to_enum<RandomSource>(d.random)};
  });
}

kvs_status_code kvs_sampling_renorm_create(const kvs_sampling_renorm_desc* desc, kvs_device device,
                                           kvs_sampling_renorm_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_sampling_renorm_desc& d) {
    return SamplingRenormDesc{.vocab = d.vocab, .max_batch = d.max_batch, .kind = capi::to_enum<RenormKind>(d.kind),
                              .top_k = d.top_k, .top_p = d.top_p, .params = capi::to_enum<ParamSource>(d.params)};
  });
}

kvs_status_code kvs_chain_speculative_sampling_create(const kvs_chain_speculative_sampling_desc* desc,
                                                      kvs_device device, kvs_chain_speculative_sampling_plan** plan,
                                                      kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_chain_speculative_sampling_desc& d) {
    return ChainSpeculativeSamplingDesc{.vocab = d.vocab, .max_batch = d.max_batch,
                                        .num_draft_tokens = d.num_draft_tokens,
                                        .random = capi::to_enum<RandomSource>(d.random)};
  });
}

kvs_status_code kvs_token_penalty_create(const kvs_token_penalty_desc* desc, kvs_device device,
                                         kvs_token_penalty_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_token_penalty_desc& d) {
    return TokenPenaltyDesc{.vocab = d.vocab, .max_batch = d.max_batch,
                            .history = capi::to_enum<PenaltyHistory>(d.history), .repetition = d.repetition,
                            .frequency = d.frequency, .presence = d.presence,
                            .params = capi::to_enum<ParamSource>(d.params)};
  });
}

}  // extern "C"

KVS_CAPI_PLAN_COMMON(sampling)
KVS_CAPI_PLAN_COMMON(sampling_renorm)
KVS_CAPI_PLAN_COMMON(chain_speculative_sampling)
KVS_CAPI_PLAN_COMMON(token_penalty)
