// The demo's optional layers (--mla, --gdn) and what the serving loop
// (demo.cpp) shares with them: requests, op placement and timing, page tables
// mirrored for the ops, and the --check bookkeeping.
//
// Each layer keeps its own cache or state beside the standard layers' KV pools
// and adds its output into the attention sum the toy model projects to logits,
// so its numbers steer the sampled tokens like any other layer's.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kvserve/block_manager.hpp"
#include "kvserve/gdn.hpp"
#include "kvserve/kv_cache.hpp"
#include "kvserve/mla.hpp"
#include "mirror.hpp"
#include "reference/buffer.hpp"
#include "toy_model.hpp"

namespace kvserve::cli {

// x as the nearest value of dtype t holds.
double round_to(DType t, double x);
// Every element of every vector rounded to dtype t: what a kernel reads.
void round_all(DType t, std::initializer_list<std::vector<double>*> xs);

struct Request {
  int id = 0;
  int arrival_step = 0;
  int max_new = 0;
  std::vector<int> tokens;  // the whole history: system prompt, own prompt, generated
  int prompt_len = 0;       // system prompt + own prompt
  SeqId seq = -1;
  std::int64_t shared = 0;  // tokens held in pages shared with the system prompt
  enum class State { waiting, running, done } state = State::waiting;
  int generated() const { return static_cast<int>(tokens.size()) - prompt_len; }
};

// Time and placement of one op across the run.
struct OpStats {
  Device where;
  int calls = 0;
  double ms = 0;
};

// The run's ops by name, for the summary table.
class OpTable {
 public:
  OpStats& operator[](const std::string& op) { return stats_[op]; }
  Device where(const std::string& op) { return stats_[op].where; }
  // Runs fn (a plan's run()) with timing, and a device sync so the time is real.
  Status timed(const std::string& op, const std::function<Status()>& fn);
  const std::map<std::string, OpStats>& all() const { return stats_; }

 private:
  std::map<std::string, OpStats> stats_;
};

// A plan on the GPU when the build has a kernel for the configuration, else on
// the CPU; `where` says which.
template <class PlanT>
Status place(const typename PlanT::Desc& desc, Device gpu, std::optional<PlanT>* plan, OpStats* stats) {
  if (gpu.is_cuda()) {
    auto p = PlanT::create(desc, gpu);
    if (p) {
      plan->emplace(std::move(*p));
      stats->where = gpu;
      return Status::ok();
    }
    if (p.status().code() != StatusCode::unsupported) return p.status();
  }
  auto p = PlanT::create(desc, Device::cpu());
  if (!p) return p.status();
  plan->emplace(std::move(*p));
  stats->where = Device::cpu();
  return Status::ok();
}

// A host vector as a Mirror of dtype t (rounded to it).
template <class T>
Mirror mirror_of(DType t, const std::vector<T>& v, Device gpu) {
  Mirror m(t, std::max<std::int64_t>(1, static_cast<std::int64_t>(v.size())), gpu);
  for (std::size_t i = 0; i < v.size(); ++i) m.set(static_cast<std::int64_t>(i), static_cast<double>(v[i]));
  return m;
}
// A host vector of int32 as a Mirror (page tables, indices, positions).
inline Mirror int_mirror(const std::vector<std::int32_t>& v, Device gpu) { return mirror_of(DType::int32, v, gpu); }

// A page table on the host and, for the ops, mirrored.
struct TableMirror {
  PageTable host;
  Mirror indptr, indices, last;
  std::int64_t batch = 0, num_indices = 0;
  TableMirror(const PageTable& t, Device gpu)
      : host(t),
        indptr(int_mirror(t.indptr, gpu)),
        indices(int_mirror(t.indices, gpu)),
        last(int_mirror(t.last_page_len, gpu)),
        batch(t.batch()),
        num_indices(static_cast<std::int64_t>(t.indices.size())) {}
  // `write_pools`: the op writes the pools (an append).
  PagedKv on(Device d, Mirror& k_pool, Mirror& v_pool, const PagedKvDesc& kv, bool write_pools = false) {
    return PagedKv{k_pool.on(d, {kv.num_pages, kv.page_size, kv.num_kv_heads, kv.head_dim}, write_pools),
                   v_pool.on(d, {kv.num_pages, kv.page_size, kv.num_kv_heads, kv.head_dim}, write_pools),
                   indptr.on(d, {batch + 1}), indices.on(d, {num_indices}), last.on(d, {batch})};
  }
  PagedMlaCache on(Device d, Mirror& ckv_pool, Mirror& kpe_pool, const PagedMlaDesc& c, bool write_pools = false) {
    return PagedMlaCache{ckv_pool.on(d, {c.num_pages, c.page_size, c.ckv_dim}, write_pools),
                         kpe_pool.on(d, {c.num_pages, c.page_size, c.kpe_dim}, write_pools),
                         indptr.on(d, {batch + 1}), indices.on(d, {num_indices}), last.on(d, {batch})};
  }
};

// A batch's tokens to append, packed: row i is request batch_idx[i]'s token at
// positions[i]; request b owns rows qo_indptr[b] .. qo_indptr[b + 1].
struct PackedTokens {
  enum class Which { uncached, last };  // the tokens after the shared pages, or the newest one
  PackedTokens(const std::vector<Request*>& batch, Which which, Device gpu);
  std::int64_t size() const { return static_cast<std::int64_t>(positions.size()); }
  std::vector<std::int32_t> qo_indptr{0}, batch_idx, positions;
  Mirror bidx, pos;  // batch_idx and positions for the ops
};

// Compares `rows` output rows (`what`) with the oracle's: counts them into
// *checked and a failure into *failures.
void check_rows(const std::string& what, const std::vector<double>& got, const std::vector<double>& ref, DType dtype,
                std::int64_t rows, std::int64_t* checked, std::vector<std::string>* failures);

// What a layer shares with the serving loop.
struct LayerContext {
  Device gpu;  // Device::cpu() for a CPU run
  DType dtype;  // inputs, caches and outputs (a GDN state is f32 regardless)
  bool check;
  std::uint64_t seed;
  int vocab;
  OpTable* ops;
  std::vector<std::string>* check_failures;
};

// The part both layers share: the context, folding an output into the
// attention sum, and the count of checked rows.
class DemoLayer {
 public:
  std::int64_t checked_rows() const { return checked_rows_; }

 protected:
  explicit DemoLayer(const LayerContext& cx) : cx_(cx) {}
  // Adds row `row` of out ([rows, heads, head_width]) into attn, element
  // (h, x) at (h * head_width + x) % attn.size(), scaled by 1 / heads so the
  // layer weighs about as much as one standard layer.
  void fold(Mirror& out, std::int64_t row, int heads, int head_width, std::vector<double>* attn) const;
  // check_rows for `rows` output rows of request r in `layer`.
  void check(const Request& r, const char* layer, const std::vector<double>& got, const std::vector<double>& ref,
             std::int64_t rows);

  LayerContext cx_;
  std::int64_t checked_rows_ = 0;
};

// One DeepSeek-style MLA layer in the absorbed form (mla.hpp): 16 heads over
// a paged latent cache (ckv 512, kpe 64) that the standard layers' page tables
// address, so the BlockManager's sharing and retiring cover it too.
class MlaLayer : public DemoLayer {
 public:
  static constexpr int kHeads = 16, kCkv = 512, kKpe = 64;
  static constexpr const char* kSummary = " + MLA (16 heads, ckv 512, kpe 64)";  // for the banner
  MlaLayer(const LayerContext& cx, int page_size, std::int64_t num_pages, int max_batch);
  Status setup();
  // Appends the latent rows of `rows`; with attn, attends each request's last
  // token (it sees every key, as the prompt's last causal row does) into attn[b].
  Status prefill(const std::vector<Request*>& batch, PackedTokens& rows, TableMirror& table,
                 std::vector<std::vector<double>>* attn);
  // Appends each request's newest token, then attends it over `table`.
  Status decode(const std::vector<Request*>& batch, TableMirror& table, std::vector<std::vector<double>>* attn);

 private:
  Status append(const std::vector<Request*>& batch, PackedTokens& rows, TableMirror& table);
  Status attend(const std::vector<Request*>& batch, TableMirror& table, std::vector<std::vector<double>>* attn);
  // The cached rows of a token at a position: ckv [512] and kpe [64] (RoPE'd).
  void latent(int token, std::int64_t pos, double* ckv, double* kpe) const;
  // Head h's query: q_nope [512] and q_pe [64] (RoPE'd); a cyclic shift of the
  // token's row per head keeps the tables at one row per token.
  void query(int token, std::int64_t pos, int h, double* q_nope, double* q_pe) const;
  void verify(const Request& r, Mirror& out, std::int64_t row);

  PagedMlaDesc desc_;
  int max_batch_;
  float sm_scale_;
  ToyTable ckv_, kpe_, q_nope_, q_pe_;
  Mirror ckv_pages_, kpe_pages_;
  std::optional<PagedMlaAppendPlan> append_;
  std::optional<BatchPagedMlaDecodePlan> decode_;
  std::unique_ptr<test::DeviceMemory> ws_;
};

// One gated delta rule layer (gdn.hpp): 2 q/k heads, 4 v heads, d_k = d_v =
// 64, q and k L2-normalised in the kernel. Each running request owns a slot of
// a state pool; a fresh request's prompt is prefilled from a zero state into
// its slot, and every decode step updates the slots in place.
class GdnLayer : public DemoLayer {
 public:
  static constexpr int kQkHeads = 2, kVHeads = 4, kHeads = 4, kDim = 64;
  static constexpr const char* kSummary = " + GDN (2/4 heads x 64)";
  static constexpr std::int64_t kState = std::int64_t{kHeads} * kDim * kDim;  // one slot's floats
  GdnLayer(const LayerContext& cx, int max_running, std::int64_t max_tokens);
  Status setup();
  // Runs each request's whole prompt, takes it a slot, and adds its last
  // token's output into attn[b].
  Status prefill(const std::vector<Request*>& batch, std::vector<std::vector<double>>* attn);
  // One step of each request's newest token on its slot.
  Status decode(const std::vector<Request*>& batch, std::vector<std::vector<double>>* attn);
  // Returns the request's slot to the pool.
  void retire(const Request& r);

  // q, k, v, alpha, beta of a token sequence, contiguous ([T, heads, 64] and
  // [T, H]) and rounded to what the ops read (q/k/v to the dtype, gates to f32).
  struct Inputs {
    std::int64_t tokens = 0;
    std::vector<double> q, k, v, alpha, beta;
  };

 private:
  Inputs inputs(const std::vector<int>& tokens) const;
  // Runs the fp64 recurrence over `tokens` from the request's oracle state
  // (zeros at first) and compares out's rows row0 ..; keeps the new state.
  void verify(const Request& r, const std::vector<int>& tokens, Mirror& out, std::int64_t row0);

  int max_running_;
  std::int64_t max_tokens_;
  int slots_;
  ToyTable q_, k_, v_, gates_;
  Mirror pool_;  // f32 [slots, H, d_v, d_k]
  std::vector<int> free_;
  std::map<int, int> slot_of_;                    // request id -> slot
  std::map<int, std::vector<double>> ref_state_;  // request id -> the oracle's state (--check)
  std::optional<GdnPrefillPlan> prefill_;
  std::optional<GdnDecodePlan> decode_;
};

}  // namespace kvserve::cli
