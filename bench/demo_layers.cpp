#include "demo_layers.hpp"

#include <chrono>
#include <cmath>

#include "reference/compare.hpp"
#include "reference/oracle.hpp"
#include "reference/oracle_gdn.hpp"

namespace kvserve::cli {
namespace {

void set_row(Mirror& m, std::int64_t row, const std::vector<double>& x) {
  const std::int64_t w = static_cast<std::int64_t>(x.size());
  for (std::int64_t i = 0; i < w; ++i) m.set(row * w + i, x[static_cast<std::size_t>(i)]);
}

std::vector<double> slice(Mirror& m, std::int64_t first, std::int64_t n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = m.get(first + i);
  return v;
}

// A GDN op's inputs on the ops' devices.
struct GdnTensors {
  std::int64_t t;
  Mirror q, k, v, alpha, beta;
  GdnTensors(const GdnLayer::Inputs& in, DType dtype, Device gpu)
      : t(in.tokens),
        q(mirror_of(dtype, in.q, gpu)),
        k(mirror_of(dtype, in.k, gpu)),
        v(mirror_of(dtype, in.v, gpu)),
        alpha(mirror_of(DType::f32, in.alpha, gpu)),
        beta(mirror_of(DType::f32, in.beta, gpu)) {}
  // GdnPrefillArgs or GdnDecodeArgs (they name the inputs alike) on device d.
  template <class Args>
  Args bind(Device d) {
    Args a;
    a.q = q.on(d, {t, GdnLayer::kQkHeads, GdnLayer::kDim});
    a.k = k.on(d, {t, GdnLayer::kQkHeads, GdnLayer::kDim});
    a.v = v.on(d, {t, GdnLayer::kVHeads, GdnLayer::kDim});
    a.alpha = alpha.on(d, {t, GdnLayer::kHeads});
    a.beta = beta.on(d, {t, GdnLayer::kHeads});
    return a;
  }
};

}  // namespace

double round_to(DType t, double x) {
  std::uint32_t bits = 0;  // room for any element type up to f32
  store_from_float(t, &bits, 0, static_cast<float>(x));
  return load_as_float(t, &bits, 0);
}

void round_all(DType t, std::initializer_list<std::vector<double>*> xs) {
  for (std::vector<double>* x : xs)
    for (double& e : *x) e = round_to(t, e);
}

Status OpTable::timed(const std::string& op, const std::function<Status()>& fn) {
  OpStats& s = stats_[op];
  const auto start = std::chrono::steady_clock::now();
  KVSERVE_TRY(fn());
  test::synchronize(s.where);
  s.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ++s.calls;
  return Status::ok();
}

PackedTokens::PackedTokens(const std::vector<Request*>& batch, Which which, Device gpu) {
  for (std::size_t b = 0; b < batch.size(); ++b) {
    const std::int64_t end = static_cast<std::int64_t>(batch[b]->tokens.size());
    for (std::int64_t p = which == Which::last ? end - 1 : batch[b]->shared; p < end; ++p) {
      batch_idx.push_back(static_cast<std::int32_t>(b));
      positions.push_back(static_cast<std::int32_t>(p));
    }
    qo_indptr.push_back(static_cast<std::int32_t>(positions.size()));
  }
  bidx = int_mirror(batch_idx, gpu);
  pos = int_mirror(positions, gpu);
}

void check_rows(const std::string& what, const std::vector<double>& got, const std::vector<double>& ref, DType dtype,
                std::int64_t rows, std::int64_t* checked, std::vector<std::string>* failures) {
  const test::Comparison cmp = test::compare(got, ref, dtype);
  *checked += rows;
  if (cmp.failures) failures->push_back(what + ": " + cmp.summary());
}

void DemoLayer::fold(Mirror& out, std::int64_t row, int heads, int head_width, std::vector<double>* attn) const {
  const std::int64_t n = std::int64_t{heads} * head_width;
  for (std::int64_t i = 0; i < n; ++i)
    (*attn)[static_cast<std::size_t>(i) % attn->size()] += out.get(row * n + i) / heads;
}

void DemoLayer::check(const Request& r, const char* layer, const std::vector<double>& got,
                      const std::vector<double>& ref, std::int64_t rows) {
  check_rows("request " + std::to_string(r.id) + " " + layer + " layer", got, ref, cx_.dtype, rows, &checked_rows_,
             cx_.check_failures);
}

// ------------------------------------------------------------------ MlaLayer --

MlaLayer::MlaLayer(const LayerContext& cx, int page_size, std::int64_t num_pages, int max_batch)
    : DemoLayer(cx),
      desc_{.page_size = page_size, .num_pages = num_pages, .ckv_dim = kCkv, .kpe_dim = kKpe, .dtype = cx.dtype},
      max_batch_(max_batch),
      sm_scale_(1.f / std::sqrt(192.f)),  // DeepSeek-V3's: qk_nope 128 + qk_rope 64, not the latent widths
      ckv_(cx.vocab, kCkv, cx.seed + 101),
      kpe_(cx.vocab, kKpe, cx.seed + 102),
      q_nope_(cx.vocab, kCkv, cx.seed + 103),
      q_pe_(cx.vocab, kKpe, cx.seed + 104),
      ckv_pages_(cx.dtype, num_pages * page_size * kCkv, cx.gpu),
      kpe_pages_(cx.dtype, num_pages * page_size * kKpe, cx.gpu) {}

Status MlaLayer::setup() {
  OpTable& ops = *cx_.ops;
  KVSERVE_TRY(place(desc_, cx_.gpu, &append_, &ops["PagedMlaAppend"]));
  KVSERVE_TRY(place(BatchPagedMlaDecodeDesc{.max_batch = max_batch_, .num_heads = kHeads, .cache = desc_,
                                            .sm_scale = sm_scale_},
                    cx_.gpu, &decode_, &ops["BatchPagedMlaDecode"]));
  ws_ = std::make_unique<test::DeviceMemory>(ops.where("BatchPagedMlaDecode"), decode_->workspace_bytes());
  return Status::ok();
}

void MlaLayer::latent(int token, std::int64_t pos, double* ckv, double* kpe) const {
  std::copy_n(ckv_.row(token), kCkv, ckv);
  std::copy_n(kpe_.row(token), kKpe, kpe);
  rope(pos, 1, kKpe, kpe);
}

void MlaLayer::query(int token, std::int64_t pos, int h, double* q_nope, double* q_pe) const {
  const float *nope = q_nope_.row(token), *pe = q_pe_.row(token);
  for (int x = 0; x < kCkv; ++x) q_nope[x] = nope[(x + 37 * h) % kCkv];
  for (int x = 0; x < kKpe; ++x) q_pe[x] = pe[(x + 5 * h) % kKpe];
  rope(pos, 1, kKpe, q_pe);
}

Status MlaLayer::prefill(const std::vector<Request*>& batch, PackedTokens& rows, TableMirror& table,
                         std::vector<std::vector<double>>* attn) {
  KVSERVE_TRY(append(batch, rows, table));
  return attn ? attend(batch, table, attn) : Status::ok();  // the system prompt only needs its rows
}

Status MlaLayer::decode(const std::vector<Request*>& batch, TableMirror& table,
                        std::vector<std::vector<double>>* attn) {
  PackedTokens newest(batch, PackedTokens::Which::last, cx_.gpu);
  KVSERVE_TRY(append(batch, newest, table));
  return attend(batch, table, attn);
}

Status MlaLayer::append(const std::vector<Request*>& batch, PackedTokens& rows, TableMirror& table) {
  const std::int64_t n = rows.size();
  Mirror ckv(cx_.dtype, n * kCkv, cx_.gpu), kpe(cx_.dtype, n * kKpe, cx_.gpu);
  std::vector<double> c(kCkv), p(kKpe);
  for (std::int64_t i = 0; i < n; ++i) {
    latent(batch[rows.batch_idx[i]]->tokens[rows.positions[i]], rows.positions[i], c.data(), p.data());
    set_row(ckv, i, c);
    set_row(kpe, i, p);
  }
  const Device d = cx_.ops->where("PagedMlaAppend");
  return cx_.ops->timed("PagedMlaAppend", [&] {
    return append_->run({.ckv = ckv.on(d, {n, kCkv}), .kpe = kpe.on(d, {n, kKpe}),
                         .batch_indices = rows.bidx.on(d, {n}), .positions = rows.pos.on(d, {n}),
                         .cache = table.on(d, ckv_pages_, kpe_pages_, desc_, true)},
                        {}, {});
  });
}

Status MlaLayer::attend(const std::vector<Request*>& batch, TableMirror& table,
                        std::vector<std::vector<double>>* attn) {
  const std::int64_t nb = static_cast<std::int64_t>(batch.size());
  Mirror q_nope(cx_.dtype, nb * kHeads * kCkv, cx_.gpu), q_pe(cx_.dtype, nb * kHeads * kKpe, cx_.gpu),
      out(cx_.dtype, nb * kHeads * kCkv, cx_.gpu);
  std::vector<double> n(kCkv), p(kKpe);
  for (std::int64_t b = 0; b < nb; ++b) {
    const Request& r = *batch[b];
    const std::int64_t pos = static_cast<std::int64_t>(r.tokens.size()) - 1;
    for (int h = 0; h < kHeads; ++h) {
      query(r.tokens[pos], pos, h, n.data(), p.data());
      set_row(q_nope, b * kHeads + h, n);
      set_row(q_pe, b * kHeads + h, p);
    }
  }
  OpTable& ops = *cx_.ops;
  const Device d = ops.where("BatchPagedMlaDecode");
  KVSERVE_TRY(decode_->prepare(table.host.lengths(), test::workspace_of(*ws_), {}));
  KVSERVE_TRY(ops.timed("BatchPagedMlaDecode", [&] {
    return decode_->run({.q_nope = q_nope.on(d, {nb, kHeads, kCkv}), .q_pe = q_pe.on(d, {nb, kHeads, kKpe}),
                         .cache = table.on(d, ckv_pages_, kpe_pages_, desc_),
                         .out = out.on(d, {nb, kHeads, kCkv}, true)},
                        test::workspace_of(*ws_), {});
  }));
  for (std::int64_t b = 0; b < nb; ++b) {
    fold(out, b, kHeads, kCkv, &(*attn)[b]);
    if (cx_.check) verify(*batch[b], out, b);
  }
  return Status::ok();
}

// The absorbed form is attention with one KV head whose keys are [ckv | kpe]
// and whose values are ckv (as tests/attention/mla_decode_test.cpp checks it).
void MlaLayer::verify(const Request& r, Mirror& out, std::int64_t row) {
  constexpr int w = kCkv + kKpe;
  const std::int64_t len = static_cast<std::int64_t>(r.tokens.size()), last = len - 1;
  std::vector<double> q(kHeads * w), k(static_cast<std::size_t>(len * w)), v(static_cast<std::size_t>(len * kCkv)),
      ref, lse;
  for (int h = 0; h < kHeads; ++h) query(r.tokens[last], last, h, &q[h * w], &q[h * w + kCkv]);
  for (std::int64_t p = 0; p < len; ++p) {
    latent(r.tokens[p], p, &k[p * w], &k[p * w + kCkv]);
    std::copy_n(&k[p * w], kCkv, &v[p * kCkv]);
  }
  round_all(cx_.dtype, {&q, &k, &v});
  oracle::attention({.num_qo_heads = kHeads, .num_kv_heads = 1, .head_dim = w, .head_dim_v = kCkv,
                     .sm_scale = sm_scale_, .causal = true},
                    q, k, v, 1, len, &ref, &lse);
  check(r, "MLA", slice(out, row * kHeads * kCkv, kHeads * kCkv), ref, 1);
}

// ------------------------------------------------------------------ GdnLayer --

// max_running + 1 slots: one per running request and one that none holds, so
// the pool is larger than any batch, as a server's is.
GdnLayer::GdnLayer(const LayerContext& cx, int max_running, std::int64_t max_tokens)
    : DemoLayer(cx),
      max_running_(max_running),
      max_tokens_(max_tokens),
      slots_(max_running + 1),
      q_(cx.vocab, kQkHeads * kDim, cx.seed + 201),
      k_(cx.vocab, kQkHeads * kDim, cx.seed + 202),
      v_(cx.vocab, kVHeads * kDim, cx.seed + 203),
      gates_(cx.vocab, 2 * kHeads, cx.seed + 204),
      pool_(DType::f32, slots_ * kState, cx.gpu) {
  for (int s = slots_ - 1; s >= 0; --s) free_.push_back(s);
}

Status GdnLayer::setup() {
  OpTable& ops = *cx_.ops;
  KVSERVE_TRY(place(GdnPrefillDesc{.max_batch = max_running_, .max_tokens = max_tokens_, .num_qk_heads = kQkHeads,
                                   .num_v_heads = kVHeads, .head_dim_k = kDim, .head_dim_v = kDim,
                                   .dtype = cx_.dtype, .use_qk_l2norm = true},
                    cx_.gpu, &prefill_, &ops["GdnPrefill"]));
  return place(GdnDecodeDesc{.max_batch = max_running_, .num_state_slots = slots_, .num_qk_heads = kQkHeads,
                             .num_v_heads = kVHeads, .head_dim_k = kDim, .head_dim_v = kDim, .dtype = cx_.dtype,
                             .use_qk_l2norm = true},
               cx_.gpu, &decode_, &ops["GdnDecode"]);
}

GdnLayer::Inputs GdnLayer::inputs(const std::vector<int>& tokens) const {
  const auto sigmoid = [](double x) { return 1 / (1 + std::exp(-x)); };
  Inputs in;
  in.tokens = static_cast<std::int64_t>(tokens.size());
  for (int t : tokens) {
    in.q.insert(in.q.end(), q_.row(t), q_.row(t) + kQkHeads * kDim);
    in.k.insert(in.k.end(), k_.row(t), k_.row(t) + kQkHeads * kDim);
    in.v.insert(in.v.end(), v_.row(t), v_.row(t) + kVHeads * kDim);
    const float* g = gates_.row(t);
    for (int h = 0; h < kHeads; ++h) in.alpha.push_back(0.5 + 0.5 * sigmoid(g[h]));  // decay in (0.5, 1)
    for (int h = 0; h < kHeads; ++h) in.beta.push_back(sigmoid(g[kHeads + h]));      // strength in (0, 1)
  }
  round_all(cx_.dtype, {&in.q, &in.k, &in.v});
  round_all(DType::f32, {&in.alpha, &in.beta});
  return in;
}

Status GdnLayer::prefill(const std::vector<Request*>& batch, std::vector<std::vector<double>>* attn) {
  const std::int64_t nb = static_cast<std::int64_t>(batch.size());
  std::vector<int> tokens;
  std::vector<std::int32_t> cu{0};
  for (const Request* r : batch) {
    tokens.insert(tokens.end(), r->tokens.begin(), r->tokens.begin() + r->prompt_len);
    cu.push_back(static_cast<std::int32_t>(tokens.size()));
  }
  GdnTensors x(inputs(tokens), cx_.dtype, cx_.gpu);
  Mirror cu_m = int_mirror(cu, cx_.gpu), out(cx_.dtype, x.t * kHeads * kDim, cx_.gpu),
      final_state(DType::f32, nb * kState, cx_.gpu);
  OpTable& ops = *cx_.ops;
  const Device d = ops.where("GdnPrefill");
  KVSERVE_TRY(ops.timed("GdnPrefill", [&] {
    GdnPrefillArgs a = x.bind<GdnPrefillArgs>(d);
    a.cu_seqlens = cu_m.on(d, {nb + 1});
    a.out = out.on(d, {x.t, kHeads, kDim}, true);
    a.final_state = final_state.on(d, {nb, kHeads, kDim, kDim}, true);
    return prefill_->run(a, {}, {});
  }));
  for (std::int64_t b = 0; b < nb; ++b) {
    const Request& r = *batch[b];
    if (free_.empty()) return Status::internal("demo: no free GDN state slot for request " + std::to_string(r.id));
    const int slot = free_.back();
    free_.pop_back();
    slot_of_[r.id] = slot;
    for (std::int64_t e = 0; e < kState; ++e) pool_.set(slot * kState + e, final_state.get(b * kState + e));
    fold(out, cu[b + 1] - 1, kHeads, kDim, &(*attn)[b]);
    if (cx_.check) verify(r, {r.tokens.begin(), r.tokens.begin() + r.prompt_len}, out, cu[b]);
  }
  return Status::ok();
}

Status GdnLayer::decode(const std::vector<Request*>& batch, std::vector<std::vector<double>>* attn) {
  const std::int64_t nb = static_cast<std::int64_t>(batch.size());
  std::vector<int> tokens;
  std::vector<std::int32_t> slots;
  for (const Request* r : batch) {
    tokens.push_back(r->tokens.back());
    slots.push_back(slot_of_.at(r->id));
  }
  GdnTensors x(inputs(tokens), cx_.dtype, cx_.gpu);
  Mirror idx = int_mirror(slots, cx_.gpu), out(cx_.dtype, nb * kHeads * kDim, cx_.gpu);
  OpTable& ops = *cx_.ops;
  const Device d = ops.where("GdnDecode");
  KVSERVE_TRY(ops.timed("GdnDecode", [&] {
    GdnDecodeArgs a = x.bind<GdnDecodeArgs>(d);
    a.state_indices = idx.on(d, {nb});
    a.state = pool_.on(d, {slots_, kHeads, kDim, kDim}, true);
    a.out = out.on(d, {nb, kHeads, kDim}, true);
    return decode_->run(a, {}, {});
  }));
  for (std::int64_t b = 0; b < nb; ++b) {
    fold(out, b, kHeads, kDim, &(*attn)[b]);
    if (cx_.check) verify(*batch[b], {batch[b]->tokens.back()}, out, b);
  }
  return Status::ok();
}

void GdnLayer::retire(const Request& r) {
  free_.push_back(slot_of_.at(r.id));
  slot_of_.erase(r.id);
  ref_state_.erase(r.id);
}

// The oracle carries its own fp64 state per request from step to step
// (chained runs equal one run over the whole history), independent of the
// kernels' f32 pool.
void GdnLayer::verify(const Request& r, const std::vector<int>& tokens, Mirror& out, std::int64_t row0) {
  const Inputs in = inputs(tokens);
  const std::int64_t width = kHeads * kDim;
  std::vector<double> ref, final_state;
  oracle::gdn_prefill({.num_qk_heads = kQkHeads, .num_v_heads = kVHeads, .head_dim_k = kDim, .head_dim_v = kDim,
                       .scale = 1 / std::sqrt(double(kDim)), .l2norm = true, .l2norm_eps = GdnPrefillDesc{}.l2norm_eps},
                      in.q, in.k, in.v, in.alpha, in.beta, {0, static_cast<std::int32_t>(in.tokens)}, ref_state_[r.id],
                      &ref, &final_state);
  check(r, "GDN", slice(out, row0 * width, in.tokens * width), ref, in.tokens);
  ref_state_[r.id] = std::move(final_state);
}

}  // namespace kvserve::cli
