// kvserve demo: a continuous-batching serving loop over the whole library.
//
// Requests arrive over time, each a shared system prompt followed by its own
// prompt. The BlockManager holds the system prompt's pages once and forks every
// request from it (shared pages are reference-counted and return when the last
// user retires). Each step:
//   1. admits arrivals while pages last (admission reserves room to finish);
//   2. prefills the admitted requests: PagedKvAppend (ragged) of their own
//      tokens' K/V, then BatchPagedPrefill over prefix + own pages;
//   3. decodes the running ones: one slot reserved per request, PagedKvAppend
//      (decode) of the last token's K/V, then CascadeAttention (the shared
//      prefix attended once for all, each suffix apart, merged);
//   4. projects the attention outputs to logits (ToyModel), applies
//      TokenPenalty and samples with top-k + top-p (Sampling);
//   5. retires finished requests.
// --mla and --gdn add an MLA layer and a gated delta rule layer beside the
// attention layers (demo_layers.hpp), prefilled and decoded with them.
// With --check every attention row (the MLA and GDN layers' too) is compared
// with the fp64 oracle over the request's full token history, every penalty
// with its formula, and every sample with the kept set. On --device cuda each op runs on the GPU when the
// build has a kernel for it, else on the CPU; the summary says which ran where.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench.hpp"
#include "demo.hpp"
#include "demo_layers.hpp"
#include "kvserve/attention.hpp"
#include "kvserve/block_manager.hpp"
#include "kvserve/kv_cache.hpp"
#include "kvserve/penalty.hpp"
#include "kvserve/sampling.hpp"
#include "mirror.hpp"
#include "reference/oracle.hpp"
#include "toy_model.hpp"

namespace kvserve::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  int requests, system_prompt, prompt_min, prompt_max, new_min, new_max, max_running, page_size, num_pages;
  int top_k;
  float top_p, temperature, repetition, frequency, presence;
  ToyModelShape model;
  std::uint64_t seed;
  Device gpu;  // Device::cpu() for a CPU run
  DType dtype;  // q, k, v, the KV pools and attention outputs
  bool check;
  bool mla, gdn;  // the optional layers
};

class Demo {
 public:
  explicit Demo(const Config& c) : c_(c), model_(c.model, c.seed) {}
  Status run();

 private:
  Status setup();
  void admit(int step);
  Status prefill(std::vector<Request*>& batch, std::vector<std::vector<double>>* attn);
  Status decode(std::vector<Request*>& batch, std::vector<std::vector<double>>* attn);
  Status sample(std::vector<Request*>& rows, const std::vector<std::vector<double>>& attn);
  // Checks attention rows of request r (queries at positions [first, first + n))
  // of one layer against the fp64 oracle over its history.
  void check_attention(const Request& r, int layer, std::int64_t first, std::int64_t n, Mirror& out,
                       std::int64_t out_row0);
  PagedKvDesc kv_desc() const;

  Config c_;
  ToyModel model_;
  std::optional<BlockManager> bm_;
  std::vector<Request> requests_;
  SeqId system_seq_ = -1;
  std::vector<Mirror> k_pools_, v_pools_;  // one pair per layer
  std::optional<PagedKvAppendPlan> append_ragged_, append_decode_;
  std::optional<BatchPagedPrefillPlan> prefill_;
  std::optional<CascadeAttentionPlan> cascade_;
  std::optional<TokenPenaltyPlan> penalty_;
  std::optional<SamplingPlan> sampler_;
  std::unique_ptr<test::DeviceMemory> prefill_ws_, cascade_ws_;
  std::optional<MlaLayer> mla_;
  std::optional<GdnLayer> gdn_;
  OpTable ops_;
  std::mt19937_64 rng_{0};
  // Summary.
  std::int64_t peak_pages_ = 0, tokens_generated_ = 0, checked_rows_ = 0, checked_samples_ = 0;
  std::vector<std::string> check_failures_;
};

PagedKvDesc Demo::kv_desc() const {
  return PagedKvDesc{.page_size = c_.page_size, .num_pages = c_.num_pages, .num_kv_heads = c_.model.num_kv_heads,
                     .head_dim = c_.model.head_dim, .dtype = c_.dtype, .layout = KvLayout::NHD};
}

Status Demo::setup() {
  rng_.seed(c_.seed);
  auto bm = BlockManager::create(c_.num_pages, c_.page_size);
  if (!bm) return bm.status();
  bm_.emplace(std::move(*bm));
  const PagedKvDesc kv = kv_desc();
  const std::int64_t pool = kv.num_pages * kv.page_size * kv.num_kv_heads * kv.head_dim;
  for (int l = 0; l < c_.model.layers; ++l) {
    k_pools_.emplace_back(c_.dtype, pool, c_.gpu);
    v_pools_.emplace_back(c_.dtype, pool, c_.gpu);
  }
  const int max_rows = c_.max_running;
  KVSERVE_TRY(place(PagedKvAppendDesc{.kv = kv, .dtype = c_.dtype, .mode = AppendMode::ragged}, c_.gpu,
                    &append_ragged_, &ops_["PagedKvAppend (ragged)"]));
  KVSERVE_TRY(place(PagedKvAppendDesc{.kv = kv, .dtype = c_.dtype, .mode = AppendMode::decode}, c_.gpu,
                    &append_decode_, &ops_["PagedKvAppend (decode)"]));
  KVSERVE_TRY(place(BatchPagedPrefillDesc{.max_batch = max_rows, .num_qo_heads = c_.model.num_qo_heads, .kv = kv,
                                          .q_dtype = c_.dtype, .causal = true},
                    c_.gpu, &prefill_, &ops_["BatchPagedPrefill"]));
  KVSERVE_TRY(place(CascadeAttentionDesc{.max_batch = max_rows, .max_groups = 1,
                                         .num_qo_heads = c_.model.num_qo_heads, .kv = kv, .q_dtype = c_.dtype},
                    c_.gpu, &cascade_, &ops_["CascadeAttention"]));
  KVSERVE_TRY(place(TokenPenaltyDesc{.vocab = c_.model.vocab, .max_batch = 2 * max_rows,
                                     .history = PenaltyHistory::token_ids, .repetition = c_.repetition,
                                     .frequency = c_.frequency, .presence = c_.presence},
                    c_.gpu, &penalty_, &ops_["TokenPenalty"]));
  KVSERVE_TRY(place(SamplingDesc{.vocab = c_.model.vocab, .max_batch = 2 * max_rows, .input = SamplingInput::logits,
                                 .filter = SamplingFilter::top_k_top_p, .order = TopKTopPOrder::k_then_p,
                                 .temperature = c_.temperature, .top_k = c_.top_k, .top_p = c_.top_p,
                                 .random = RandomSource::per_row},
                    c_.gpu, &sampler_, &ops_["Sampling (top-k, top-p)"]));
  prefill_ws_ = std::make_unique<test::DeviceMemory>(ops_.where("BatchPagedPrefill"), prefill_->workspace_bytes());
  cascade_ws_ = std::make_unique<test::DeviceMemory>(ops_.where("CascadeAttention"), cascade_->workspace_bytes());
  const LayerContext cx{.gpu = c_.gpu, .dtype = c_.dtype, .check = c_.check, .seed = c_.seed,
                        .vocab = c_.model.vocab, .ops = &ops_, .check_failures = &check_failures_};
  if (c_.mla) {
    mla_.emplace(cx, c_.page_size, c_.num_pages, max_rows);
    KVSERVE_TRY(mla_->setup());
  }
  if (c_.gdn) {
    gdn_.emplace(cx, max_rows, std::int64_t{max_rows} * (c_.system_prompt + c_.prompt_max));
    KVSERVE_TRY(gdn_->setup());
  }

  // The workload: a shared system prompt, then requests with their own prompts.
  std::uniform_int_distribution<int> token(1, c_.model.vocab - 1), plen(c_.prompt_min, c_.prompt_max),
      nlen(c_.new_min, c_.new_max), gap(0, 2);
  std::vector<int> system(c_.system_prompt);
  for (int& t : system) t = token(rng_);
  int arrival = 0;
  for (int i = 0; i < c_.requests; ++i) {
    Request r;
    r.id = i;
    r.arrival_step = arrival;
    arrival += gap(rng_);
    r.max_new = nlen(rng_);
    r.tokens = system;
    for (int j = plen(rng_); j > 0; --j) r.tokens.push_back(token(rng_));
    r.prompt_len = static_cast<int>(r.tokens.size());
    requests_.push_back(std::move(r));
  }

  // The system prompt's K/V, written once into its pages.
  auto sys = bm_->add_sequence(c_.system_prompt);
  if (!sys) return sys.status();
  system_seq_ = *sys;
  Request sys_req;
  sys_req.tokens = system;
  sys_req.prompt_len = c_.system_prompt;
  sys_req.seq = system_seq_;
  std::vector<Request*> one{&sys_req};
  return prefill(one, nullptr);
}

void Demo::admit(int step) {
  // Room to finish: every running request may still need one page per
  // page_size tokens it has left to generate, plus one partly filled page.
  std::int64_t reserved = 0;
  for (const Request& r : requests_)
    if (r.state == Request::State::running)
      reserved += (r.max_new - r.generated() + c_.page_size - 1) / c_.page_size + 1;
  int running = 0;
  for (const Request& r : requests_) running += r.state == Request::State::running;
  for (Request& r : requests_) {
    if (r.state != Request::State::waiting || r.arrival_step > step || r.seq >= 0) continue;
    if (running >= c_.max_running) return;
    auto seq = bm_->fork(system_seq_);
    if (!seq) return;
    const std::int64_t shared = bm_->sequence(*seq)->length;
    const std::int64_t own = r.prompt_len - shared;
    auto need = bm_->pages_needed(*seq, own);
    const std::int64_t finish = (r.max_new + c_.page_size - 1) / c_.page_size + 1;
    if (!need || *need + finish + reserved > bm_->free_pages() || !bm_->append_tokens(*seq, own)) {
      (void)bm_->release(*seq);
      return;  // first come, first served: later arrivals wait too
    }
    r.seq = *seq;
    r.shared = shared;
    reserved += finish;
    ++running;
  }
}

// Prefill: the requests' own tokens (after the shared pages) get K/V written
// and attend to the whole sequence; attn receives, per request, the summed
// attention output of its last token.
Status Demo::prefill(std::vector<Request*>& batch, std::vector<std::vector<double>>* attn) {
  const int hq = c_.model.num_qo_heads, hkv = c_.model.num_kv_heads, d = c_.model.head_dim;
  std::vector<SeqId> seqs;
  for (Request* r : batch) seqs.push_back(r->seq);
  PackedTokens rows(batch, PackedTokens::Which::uncached, c_.gpu);
  const auto &qo_indptr = rows.qo_indptr, &batch_idx = rows.batch_idx, &positions = rows.positions;
  const std::int64_t n = rows.size(), nb = static_cast<std::int64_t>(batch.size());
  auto table = bm_->page_table(seqs);
  if (!table) return table.status();
  TableMirror tm(*table, c_.gpu);
  Mirror qo = int_mirror(qo_indptr, c_.gpu);
  const PagedKvDesc kv = kv_desc();
  Mirror k(c_.dtype, n * hkv * d, c_.gpu), v(c_.dtype, n * hkv * d, c_.gpu), q(c_.dtype, n * hq * d, c_.gpu),
      out(c_.dtype, n * hq * d, c_.gpu);
  std::vector<double> row(static_cast<std::size_t>(hq * d));
  const Device pd = ops_.where("BatchPagedPrefill");
  if (attn) {
    KVSERVE_TRY(prefill_->prepare({qo_indptr, table->indptr, table->last_page_len},
                                  test::workspace_of(*prefill_ws_), {}));
    attn->assign(batch.size(), std::vector<double>(static_cast<std::size_t>(hq * d), 0.0));
  }
  for (int l = 0; l < c_.model.layers; ++l) {
    for (std::int64_t i = 0; i < n; ++i) {
      const Request& r = *batch[batch_idx[i]];
      model_.k(l, r.tokens[positions[i]], positions[i], row.data());
      for (int x = 0; x < hkv * d; ++x) k.set(i * hkv * d + x, row[x]);
      model_.v(l, r.tokens[positions[i]], row.data());
      for (int x = 0; x < hkv * d; ++x) v.set(i * hkv * d + x, row[x]);
    }
    const Device ad = ops_.where("PagedKvAppend (ragged)");
    KVSERVE_TRY(ops_.timed("PagedKvAppend (ragged)", [&] {
      return append_ragged_->run({.k = k.on(ad, {n, hkv, d}), .v = v.on(ad, {n, hkv, d}),
                                  .batch_indices = rows.bidx.on(ad, {n}), .positions = rows.pos.on(ad, {n}),
                                  .kv = tm.on(ad, k_pools_[l], v_pools_[l], kv, true)},
                                 {}, {});
    }));
    if (!attn) continue;  // the system prompt only needs its K/V
    for (std::int64_t i = 0; i < n; ++i) {
      model_.q(l, batch[batch_idx[i]]->tokens[positions[i]], positions[i], row.data());
      for (int x = 0; x < hq * d; ++x) q.set(i * hq * d + x, row[x]);
    }
    KVSERVE_TRY(ops_.timed("BatchPagedPrefill", [&] {
      return prefill_->run({.q = q.on(pd, {n, hq, d}), .qo_indptr = qo.on(pd, {nb + 1}),
                            .kv = tm.on(pd, k_pools_[l], v_pools_[l], kv), .out = out.on(pd, {n, hq, d}, true)},
                           test::workspace_of(*prefill_ws_), {});
    }));
    for (std::int64_t b = 0; b < nb; ++b) {
      const std::int64_t last = qo_indptr[b + 1] - 1;
      for (int x = 0; x < hq * d; ++x) (*attn)[b][x] += out.get(last * hq * d + x);
      if (c_.check)
        check_attention(*batch[b], l, positions[qo_indptr[b]], qo_indptr[b + 1] - qo_indptr[b], out, qo_indptr[b]);
    }
  }
  if (mla_) KVSERVE_TRY(mla_->prefill(batch, rows, tm, attn));
  if (gdn_ && attn) KVSERVE_TRY(gdn_->prefill(batch, attn));  // a request's state covers the system prompt too
  return Status::ok();
}

// Decode: one new slot per request for its last sampled token, then cascade
// attention of that token over prefix + suffix.
Status Demo::decode(std::vector<Request*>& batch, std::vector<std::vector<double>>* attn) {
  const int hq = c_.model.num_qo_heads, hkv = c_.model.num_kv_heads, d = c_.model.head_dim;
  const std::int64_t nb = static_cast<std::int64_t>(batch.size());
  std::vector<SeqId> seqs;
  for (Request* r : batch) seqs.push_back(r->seq);
  KVSERVE_TRY(bm_->append_tokens(seqs, 1));
  auto table = bm_->page_table(seqs);
  if (!table) return table.status();
  const std::vector<std::vector<SeqId>> groups{seqs};
  auto tables = bm_->cascade_tables(groups);
  if (!tables) return tables.status();
  TableMirror all(*table, c_.gpu), prefix(tables->prefix, c_.gpu), suffix(tables->suffix, c_.gpu);
  Mirror groups_m = int_mirror(tables->group_indptr, c_.gpu);
  const PagedKvDesc kv = kv_desc();
  Mirror k(c_.dtype, nb * hkv * d, c_.gpu), v(c_.dtype, nb * hkv * d, c_.gpu), q(c_.dtype, nb * hq * d, c_.gpu),
      out(c_.dtype, nb * hq * d, c_.gpu);
  const Device cd = ops_.where("CascadeAttention"), ad = ops_.where("PagedKvAppend (decode)");
  KVSERVE_TRY(cascade_->prepare(tables->lengths(), test::workspace_of(*cascade_ws_), {}));
  attn->assign(batch.size(), std::vector<double>(static_cast<std::size_t>(hq * d), 0.0));
  std::vector<double> row(static_cast<std::size_t>(hq * d));
  for (int l = 0; l < c_.model.layers; ++l) {
    for (std::int64_t b = 0; b < nb; ++b) {
      const Request& r = *batch[b];
      const std::int64_t p = static_cast<std::int64_t>(r.tokens.size()) - 1;
      model_.k(l, r.tokens[p], p, row.data());
      for (int x = 0; x < hkv * d; ++x) k.set(b * hkv * d + x, row[x]);
      model_.v(l, r.tokens[p], row.data());
      for (int x = 0; x < hkv * d; ++x) v.set(b * hkv * d + x, row[x]);
      model_.q(l, r.tokens[p], p, row.data());
      for (int x = 0; x < hq * d; ++x) q.set(b * hq * d + x, row[x]);
    }
    KVSERVE_TRY(ops_.timed("PagedKvAppend (decode)", [&] {
      return append_decode_->run(
          {.k = k.on(ad, {nb, hkv, d}), .v = v.on(ad, {nb, hkv, d}), .kv = all.on(ad, k_pools_[l], v_pools_[l], kv, true)},
          {}, {});
    }));
    KVSERVE_TRY(ops_.timed("CascadeAttention", [&] {
      return cascade_->run({.q = q.on(cd, {nb, hq, d}), .group_indptr = groups_m.on(cd, {2}),
                            .prefix = prefix.on(cd, k_pools_[l], v_pools_[l], kv),
                            .suffix = suffix.on(cd, k_pools_[l], v_pools_[l], kv), .out = out.on(cd, {nb, hq, d}, true)},
                           test::workspace_of(*cascade_ws_), {});
    }));
    for (std::int64_t b = 0; b < nb; ++b) {
      for (int x = 0; x < hq * d; ++x) (*attn)[b][x] += out.get(b * hq * d + x);
      if (c_.check)
        check_attention(*batch[b], l, static_cast<std::int64_t>(batch[b]->tokens.size()) - 1, 1, out, b);
    }
  }
  if (mla_) KVSERVE_TRY(mla_->decode(batch, all, attn));
  if (gdn_) KVSERVE_TRY(gdn_->decode(batch, attn));
  return Status::ok();
}

void Demo::check_attention(const Request& r, int layer, std::int64_t first, std::int64_t n, Mirror& out,
                           std::int64_t out_row0) {
  const int hq = c_.model.num_qo_heads, hkv = c_.model.num_kv_heads, d = c_.model.head_dim;
  const std::int64_t kv_len = first + n;
  std::vector<double> q(static_cast<std::size_t>(n * hq * d)), k(static_cast<std::size_t>(kv_len * hkv * d)),
      v(k.size()), ref, lse, got(q.size());
  for (std::int64_t p = 0; p < kv_len; ++p) {
    model_.k(layer, r.tokens[p], p, k.data() + p * hkv * d);
    model_.v(layer, r.tokens[p], v.data() + p * hkv * d);
  }
  for (std::int64_t i = 0; i < n; ++i) model_.q(layer, r.tokens[first + i], first + i, q.data() + i * hq * d);
  // The kernels saw q, k and v rounded to the demo's dtype: so does the oracle.
  round_all(c_.dtype, {&q, &k, &v});
  oracle::attention({.num_qo_heads = hq, .num_kv_heads = hkv, .head_dim = d, .head_dim_v = d,
                     .sm_scale = 1.0 / std::sqrt(double(d)), .causal = true},
                    q, k, v, n, kv_len, &ref, &lse);
  for (std::int64_t i = 0; i < n * hq * d; ++i) got[i] = out.get(out_row0 * hq * d + i);
  check_rows("request " + std::to_string(r.id) + " layer " + std::to_string(layer), got, ref, c_.dtype, n,
             &checked_rows_, &check_failures_);
}

// Logits (host projection), penalties from each row's history (its own prompt
// and generated tokens), then one top-k + top-p sample per row.
Status Demo::sample(std::vector<Request*>& rows, const std::vector<std::vector<double>>& attn) {
  const int vocab = c_.model.vocab;
  const std::int64_t nb = static_cast<std::int64_t>(rows.size());
  std::size_t hist = 1;
  for (Request* r : rows) hist = std::max(hist, r->tokens.size() - c_.system_prompt);
  Mirror logits(DType::f32, nb * vocab, c_.gpu), ids(DType::int32, nb * static_cast<std::int64_t>(hist), c_.gpu),
      seeds(DType::int32, nb, c_.gpu), offsets(DType::int32, nb, c_.gpu), out(DType::int32, nb, c_.gpu);
  std::vector<float> row(static_cast<std::size_t>(vocab));
  std::vector<std::vector<float>> expected(rows.size());  // the penalised logits, by the formula
  for (std::int64_t b = 0; b < nb; ++b) {
    const Request& r = *rows[b];
    model_.logits(attn[b].data(), row.data());
    std::vector<int> count(static_cast<std::size_t>(vocab), 0);
    for (std::size_t i = 0; i < hist; ++i) {
      const std::size_t p = c_.system_prompt + i;
      const int t = p < r.tokens.size() ? r.tokens[p] : -1;
      ids.set(b * static_cast<std::int64_t>(hist) + static_cast<std::int64_t>(i), t);
      if (t >= 0) ++count[t];
    }
    for (int t = 0; t < vocab; ++t) logits.set(b * vocab + t, row[t]);
    if (c_.check) {
      for (int t = 0; t < vocab; ++t) {
        if (count[t] == 0) continue;
        float x = row[t];
        x = x > 0 ? x / c_.repetition : x * c_.repetition;
        x = std::fma(-c_.frequency, static_cast<float>(count[t]), x);
        row[t] = x - c_.presence;
      }
      expected[b] = row;
    }
    seeds.set(b, static_cast<double>((c_.seed * 7919 + static_cast<std::uint64_t>(r.id)) % 2147483647u));
    offsets.set(b, r.generated());
  }
  const Device pd = ops_.where("TokenPenalty"), sd = ops_.where("Sampling (top-k, top-p)");
  KVSERVE_TRY(ops_.timed("TokenPenalty", [&] {
    return penalty_->run({.logits = logits.on(pd, {nb, vocab}, true),
                          .token_ids = ids.on(pd, {nb, static_cast<std::int64_t>(hist)})},
                         {}, {});
  }));
  KVSERVE_TRY(ops_.timed("Sampling (top-k, top-p)", [&] {
    return sampler_->run({.input = logits.on(sd, {nb, vocab}), .out = out.on(sd, {nb}, true),
                          .seeds = seeds.on(sd, {nb}), .offsets = offsets.on(sd, {nb})},
                         {}, {});
  }));
  for (std::int64_t b = 0; b < nb; ++b) {
    const int token = static_cast<int>(out.get(b));
    if (c_.check) {
      // The penalties give the formula's bits, and the token is among the
      // top_k highest logits (ties to the lower index).
      int higher = 0;
      bool penalties_ok = true;
      for (int t = 0; t < vocab; ++t) {
        const float x = static_cast<float>(logits.get(b * vocab + t));
        penalties_ok &= x == expected[b][t];
        if (token >= 0 && (x > expected[b][token] || (x == expected[b][token] && t < token))) ++higher;
      }
      ++checked_samples_;
      if (!penalties_ok) check_failures_.push_back("request " + std::to_string(rows[b]->id) + ": penalised logits differ");
      if (token < 0 || token >= vocab || higher >= c_.top_k)
        check_failures_.push_back("request " + std::to_string(rows[b]->id) + ": token " + std::to_string(token) +
                                  " outside the top-" + std::to_string(c_.top_k));
    }
    rows[b]->tokens.push_back(std::max(token, 0));
    ++tokens_generated_;
  }
  return Status::ok();
}

Status Demo::run() {
  const auto start = Clock::now();
  KVSERVE_TRY(setup());
  std::printf("demo: %d requests, system prompt %d tokens, prompts %d-%d, %d-%d new tokens, page %d, %d pages, "
              "model %d layers x %d/%d heads x %d%s%s, vocab %d, %s\n",
              c_.requests, c_.system_prompt, c_.prompt_min, c_.prompt_max, c_.new_min, c_.new_max, c_.page_size,
              c_.num_pages, c_.model.layers, c_.model.num_qo_heads, c_.model.num_kv_heads, c_.model.head_dim,
              mla_ ? MlaLayer::kSummary : "", gdn_ ? GdnLayer::kSummary : "",
              c_.model.vocab, std::string(name_of(c_.dtype)).c_str());
  int done = 0, step = 0;
  for (; done < c_.requests; ++step) {
    if (step > 100 * (c_.requests + c_.new_max))
      return Status::internal("demo: no progress after " + std::to_string(step) + " steps");
    admit(step);
    std::vector<Request*> fresh, running;
    for (Request& r : requests_) {
      if (r.seq < 0 || r.state == Request::State::done) continue;
      (r.state == Request::State::waiting ? fresh : running).push_back(&r);
    }
    std::vector<std::vector<double>> attn_fresh, attn_running;
    if (!fresh.empty()) KVSERVE_TRY(prefill(fresh, &attn_fresh));
    if (!running.empty()) KVSERVE_TRY(decode(running, &attn_running));
    peak_pages_ = std::max(peak_pages_, bm_->num_pages() - bm_->free_pages());
    std::vector<Request*> rows = fresh;
    rows.insert(rows.end(), running.begin(), running.end());
    attn_fresh.insert(attn_fresh.end(), attn_running.begin(), attn_running.end());
    if (!rows.empty()) KVSERVE_TRY(sample(rows, attn_fresh));
    for (Request* r : fresh) r->state = Request::State::running;
    for (Request* r : rows) {
      if (r->generated() < r->max_new) continue;
      KVSERVE_TRY(bm_->release(r->seq));
      if (gdn_) gdn_->retire(*r);
      r->state = Request::State::done;
      ++done;
    }
    if (step % 10 == 0 || done == c_.requests) {
      std::printf("step %4d: prefill %2zu, decode %2zu, done %3d/%d, tokens %6lld, pages in use %4lld/%d%s\n", step,
                  fresh.size(), running.size(), done, c_.requests, static_cast<long long>(tokens_generated_),
                  static_cast<long long>(bm_->num_pages() - bm_->free_pages()), c_.num_pages,
                  c_.check ? (check_failures_.empty() ? ", verified" : ", CHECK FAILED") : "");
      std::fflush(stdout);
    }
  }
  KVSERVE_TRY(bm_->release(system_seq_));
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("\nserved %d requests in %d steps: %lld tokens generated in %.2f s (%.0f tokens/s); peak pages in use "
              "%lld of %d; %lld bytes copied host<->device\n",
              c_.requests, step, static_cast<long long>(tokens_generated_), secs, tokens_generated_ / secs,
              static_cast<long long>(peak_pages_), c_.num_pages, static_cast<long long>(Mirror::bytes_copied()));
  std::printf("%-26s %-7s %7s %11s %11s\n", "op", "ran on", "calls", "total (ms)", "mean (us)");
  for (const auto& [name, s] : ops_.all())
    std::printf("%-26s %-7s %7d %11.2f %11.1f\n", name.c_str(), s.where.to_string().c_str(), s.calls, s.ms,
                s.calls ? 1e3 * s.ms / s.calls : 0.0);
  if (bm_->free_pages() != bm_->num_pages())
    return Status::internal("demo: " + std::to_string(bm_->num_pages() - bm_->free_pages()) +
                            " pages still in use after every request retired");
  if (c_.check) {
    if (!check_failures_.empty()) {
      for (std::size_t i = 0; i < std::min<std::size_t>(check_failures_.size(), 10); ++i)
        std::printf("check: %s\n", check_failures_[i].c_str());
      return Status::internal("demo --check: " + std::to_string(check_failures_.size()) + " failures");
    }
    std::string layers;  // the optional layers' rows, when they ran
    if (mla_) layers += ", " + std::to_string(mla_->checked_rows()) + " MLA rows";
    if (gdn_) layers += ", " + std::to_string(gdn_->checked_rows()) + " GDN rows";
    std::printf("check: every step verified against the fp64 oracle (%lld attention rows%s, %lld samples)\n",
                static_cast<long long>(checked_rows_), layers.c_str(), static_cast<long long>(checked_samples_));
  }
  return Status::ok();
}

}  // namespace

std::vector<OptionSpec> demo_options() {
  return {
      {"device", OptKind::device, "", "cpu | cuda | cuda:N (default: cuda when a GPU is present): ops with a CUDA kernel "
                                      "run there, the rest on the CPU"},
      {"dtype", OptKind::act_dtype, "bf16", "q / k / v, KV pools and attention outputs"},
      {"requests", OptKind::positive_int, "48", "requests to serve"},
      {"system-prompt", OptKind::positive_int, "100", "tokens of the system prompt every request shares"},
      {"prompt-min", OptKind::positive_int, "8", "shortest own prompt"},
      {"prompt-max", OptKind::positive_int, "48", "longest own prompt"},
      {"new-min", OptKind::positive_int, "8", "fewest tokens to generate"},
      {"new-max", OptKind::positive_int, "40", "most tokens to generate"},
      {"max-running", OptKind::positive_int, "16", "most requests in flight"},
      {"page-size", OptKind::positive_int, "16", "tokens per page"},
      {"num-pages", OptKind::positive_int, "512", "pages in the KV pool"},
      {"vocab", OptKind::positive_int, "2048", "vocabulary size"},
      {"layers", OptKind::positive_int, "2", "attention layers"},
      {"top-k", OptKind::positive_int, "40", "top-k"},
      {"top-p", OptKind::real, "0.9", "top-p"},
      {"temperature", OptKind::real, "0.8", "sampling temperature"},
      {"seed", OptKind::count, "1", "seed of the workload, the weights and the samples"},
      {"mla", OptKind::flag, "", "add an MLA layer (BatchPagedMlaDecode, 16 heads, over its own paged latent cache)"},
      {"gdn", OptKind::flag, "", "add a gated delta rule layer (GdnPrefill, GdnDecode: a state slot per request)"},
      {"check", OptKind::flag, "", "verify every step against the fp64 oracle"},
      {"help", OptKind::flag, "", "print the options"},
  };
}

int run_demo(const Options& o) {
  Config c{};
  c.requests = static_cast<int>(o.integer("requests"));
  c.system_prompt = static_cast<int>(o.integer("system-prompt"));
  c.prompt_min = static_cast<int>(o.integer("prompt-min"));
  c.prompt_max = static_cast<int>(o.integer("prompt-max"));
  c.new_min = static_cast<int>(o.integer("new-min"));
  c.new_max = static_cast<int>(o.integer("new-max"));
  c.max_running = static_cast<int>(o.integer("max-running"));
  c.page_size = static_cast<int>(o.integer("page-size"));
  c.num_pages = static_cast<int>(o.integer("num-pages"));
  c.top_k = static_cast<int>(o.integer("top-k"));
  c.top_p = static_cast<float>(o.real("top-p"));
  c.temperature = static_cast<float>(o.real("temperature"));
  c.repetition = 1.1f;
  c.frequency = 0.05f;
  c.presence = 0.05f;
  c.model.vocab = static_cast<int>(o.integer("vocab"));
  c.model.layers = static_cast<int>(o.integer("layers"));
  c.seed = static_cast<std::uint64_t>(o.integer("seed"));
  c.gpu = o.given("device") ? o.device("device") : default_device();
  c.check = o.flag("check");
  c.mla = o.flag("mla");
  c.gdn = o.flag("gdn");
  c.dtype = o.dtype("dtype");
  if (c.prompt_min > c.prompt_max) throw BadOption("--prompt-min: expected <= --prompt-max, got " + std::to_string(c.prompt_min));
  if (c.new_min > c.new_max) throw BadOption("--new-min: expected <= --new-max, got " + std::to_string(c.new_min));
  if (!(c.top_p > 0 && c.top_p <= 1)) throw BadOption("--top-p: expected a value in (0, 1], got " + std::to_string(c.top_p));
  if (!(c.temperature > 0)) throw BadOption("--temperature: expected a value > 0, got " + std::to_string(c.temperature));
  if (c.gpu.is_cuda() && c.gpu.ordinal >= cuda_device_count())
    throw BadOption("--device: expected a visible CUDA device (" + std::to_string(cuda_device_count()) +
                    " visible), got '" + c.gpu.to_string() + "'");
  const std::int64_t worst = (c.system_prompt + c.prompt_max + c.new_max + c.page_size - 1) / c.page_size + 2;
  if (c.num_pages < worst + c.system_prompt / c.page_size)
    throw BadOption("--num-pages: expected at least " + std::to_string(worst + c.system_prompt / c.page_size) +
                    " (one request must fit), got " + std::to_string(c.num_pages));
  Demo demo(c);
  if (Status s = demo.run(); !s) {
    std::fprintf(stderr, "kvserve demo: %s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}

}  // namespace kvserve::cli
