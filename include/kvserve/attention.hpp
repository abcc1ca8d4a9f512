// Attention over paged and contiguous KV caches: decode, prefill, cascade.
//
// Conventions (docs/attention.md has the long form):
// - s = sm_scale * q.k; with logits_soft_cap > 0, s = cap * tanh(s / cap);
//   softmax in fp32; products and sums in fp32.
// - Query i of a request with q_len queries and kv_len keys sits at KV position
//   p = i + kv_len - q_len. Causal: key j is visible iff j <= p. Sliding window
//   (window_left >= 0): key j is visible iff j >= p - window_left. Decode is the
//   case q_len = 1 (always causal by construction).
// - lse (optional output) is log(sum_j exp(s_j)), natural log, per (token,
//   head). A row that sees no key writes output 0 and lse -inf.
// - GQA: query head h reads KV head h / (num_qo_heads / num_kv_heads); any
//   integer ratio.
// - Tensors' last dimension must be contiguous (stride 1); other strides are free
//   unless an argument says otherwise.
// - Paged KV: a request's KV length is (pages - 1) * page_size + last_page_len
//   (0 when it has no pages); see PagedKv.
//
// What run() guarantees for every op here: outputs are written, inputs only
// read, and outputs must not overlap inputs; the same inputs and plan give the
// same bits run to run (the plan's kernel().precision says whether a row also
// ignores the rest of the batch).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kvserve/plan.hpp"

namespace kvserve {

// ------------------------------------------------------------- paged KV ----

enum class KvLayout : std::uint8_t {
  NHD,  // pool [num_pages, page_size, num_kv_heads, head_dim]
  HND,  // pool [num_pages, num_kv_heads, page_size, head_dim]
};
std::string_view name_of(KvLayout l);

// A paged KV cache: one K pool and one V pool of the same shape.
struct PagedKvDesc {
  int page_size = 16;
  std::int64_t num_pages = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  DType dtype = DType::bf16;  // f16, bf16, f32, fp8_e4m3 or fp8_e5m2
  KvLayout layout = KvLayout::NHD;
  // fp8 pools only: the real value is stored * scale. Either one scale per
  // tensor (size 1) or one per KV head (size num_kv_heads). Empty means 1.
  std::vector<float> k_scale, v_scale;

  // The scale of KV head h (1 when the list is empty; the one value when it
  // holds a single scale). Every backend reads scales through these.
  float k_scale_of(int head) const { return scale_of(k_scale, head); }
  float v_scale_of(int head) const { return scale_of(v_scale, head); }

 private:
  static float scale_of(const std::vector<float>& scales, int head) {
    if (scales.empty()) return 1.f;
    return scales.size() == 1 ? scales[0] : scales[static_cast<std::size_t>(head)];
  }
};

// A batch's view of a paged cache (all on the plan's device):
// request b owns pages indices[indptr[b] .. indptr[b+1]), the last of which
// holds last_page_len[b] tokens, in [1, page_size] when the request has pages.
struct PagedKv {
  TensorView k_pages;        // pool, read
  TensorView v_pages;        // pool, read
  TensorView indptr;         // int32 [B + 1], non-decreasing, indptr[0] = 0
  TensorView indices;        // int32 [>= indptr[B]], page ids in [0, num_pages)
  TensorView last_page_len;  // int32 [B]
};

// The host-side copy of a page table's lengths that prepare() schedules from.
struct PagedKvLengths {
  std::span<const std::int32_t> indptr;         // [B + 1]
  std::span<const std::int32_t> last_page_len;  // [B]
};

// Checks a page table before any run() reads it (run() cannot afford to look
// at device memory): indptr [B + 1] starts at 0 and never decreases, indices
// holds at least indptr[B] page ids, each in [0, desc.num_pages), and
// last_page_len[b] is in [1, page_size] for every request that has pages.
// The first bad entry comes back as InvalidArgument naming the argument, the
// request, the position and the value. The pools are not read (k_pages /
// v_pages may be left empty). Host tables are checked on the calling thread in
// O(B + indptr[B]). A table on a CUDA device is checked by one kernel on
// `stream` followed by one synchronisation of that stream (a build without
// CUDA answers Unsupported); the message is the host check's, word for word.
Status validate_page_table(const PagedKvDesc& desc, const PagedKv& kv, Stream stream = {});

// ------------------------------------------------------------- variants ----

struct AttentionParams {
  std::optional<float> sm_scale;  // default 1 / sqrt(head_dim)
  float logits_soft_cap = 0.f;    // > 0 enables cap * tanh(s / cap)
  int window_left = -1;           // >= 0 enables the sliding window
};

// ------------------------------------------------------- BatchPagedDecode --

// One query token per request against its paged KV. Long requests are split
// across thread blocks on the GPU and the partial states merged; with
// kv_split_tokens > 0 the split points are fixed multiples of it, so a row's
// result is independent of the rest of the batch (batch invariance).
// fp8 pools (kv.dtype fp8_*) take f16 / bf16 queries.
struct BatchPagedDecodeDesc {
  int max_batch = 0;
  int num_qo_heads = 0;
  PagedKvDesc kv;
  DType q_dtype = DType::bf16;  // q and out; equals kv.dtype unless kv is fp8
  AttentionParams attn;
  int kv_split_tokens = 0;  // 0: the plan balances splits itself
};

struct BatchPagedDecodeArgs {
  TensorView q;    // [B, num_qo_heads, head_dim], read
  PagedKv kv;      // B requests
  TensorView out;  // [B, num_qo_heads, head_dim], written
  TensorView lse;  // optional f32 [B, num_qo_heads], written
};

struct BatchPagedDecode : OpTypes<BatchPagedDecodeDesc, BatchPagedDecodeArgs, PagedKvLengths> {
  static constexpr const char* kName = "BatchPagedDecode";
};
using BatchPagedDecodePlan = Plan<BatchPagedDecode>;

// ----------------------------------------------------------- SingleDecode --

// "FlashDecoding": row b's one query token against its own contiguous cache
// k/v [B, num_kv_heads, L, head_dim] (any strides with a contiguous last dim;
// a head stride of 0 broadcasts one head). The first kv_len[b] positions are
// used (all L when kv_len is not given); row b's query sits at position
// kv_len[b] - 1, so a window counts back from the last used key. Split along L
// on the GPU and combined.
struct SingleDecodeDesc {
  int max_batch = 0;
  int num_qo_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  DType dtype = DType::bf16;  // q, k, v and out
  AttentionParams attn;
  int kv_split_tokens = 0;  // 0: chosen by the plan
};

struct SingleDecodeArgs {
  TensorView q;       // [B, num_qo_heads, head_dim], read
  TensorView k;       // [B, num_kv_heads, L, head_dim], read
  TensorView v;       // [B, num_kv_heads, L, head_dim], read
  TensorView kv_len;  // optional int32 [B], each in [0, L]
  TensorView out;     // [B, num_qo_heads, head_dim], written
  TensorView lse;     // optional f32 [B, num_qo_heads], written
};

struct SingleDecode : OpTypes<SingleDecodeDesc, SingleDecodeArgs> {
  static constexpr const char* kName = "SingleDecode";
};
using SingleDecodePlan = Plan<SingleDecode>;

// ---------------------------------------------------------- SinglePrefill --

// One sequence: q [L_q, num_qo_heads, head_dim] against k [L_kv, num_kv_heads,
// head_dim] and v [.., head_dim_v] (NHD), or k/v [num_kv_heads, L_kv, ..] (HND).
// Query i sits at position i + L_kv - L_q: with L_q > L_kv and causal, the
// first L_q - L_kv queries see no key (output 0, lse -inf).
struct SinglePrefillDesc {
  int num_qo_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;    // q and k
  int head_dim_v = 0;  // v and out; 0 means head_dim
  DType dtype = DType::bf16;
  KvLayout layout = KvLayout::NHD;
  bool causal = false;
  AttentionParams attn;
};

struct SinglePrefillArgs {
  TensorView q;    // [L_q, num_qo_heads, head_dim], read
  TensorView k;    // NHD [L_kv, num_kv_heads, head_dim] / HND [num_kv_heads, L_kv, head_dim]
  TensorView v;    // as k, with head_dim_v
  TensorView out;  // [L_q, num_qo_heads, head_dim_v], written
  TensorView lse;  // optional f32 [L_q, num_qo_heads], written
};

struct SinglePrefill : OpTypes<SinglePrefillDesc, SinglePrefillArgs> {
  static constexpr const char* kName = "SinglePrefill";
};
using SinglePrefillPlan = Plan<SinglePrefill>;

// ----------------------------------------------------- BatchRaggedPrefill --

// Packed q/k/v: request b's queries are rows qo_indptr[b]..qo_indptr[b+1] of q,
// its keys rows kv_indptr[b]..kv_indptr[b+1] of k and v (NHD rows). Positions
// and masks as in SinglePrefill, per request. run() reads the indptr tensors,
// which must hold what the last prepare() was given.
struct BatchRaggedPrefillDesc {
  int max_batch = 0;
  int num_qo_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int head_dim_v = 0;  // 0 means head_dim
  DType dtype = DType::bf16;
  bool causal = false;
  AttentionParams attn;
};

struct RaggedLengths {
  std::span<const std::int32_t> qo_indptr;  // [B + 1]
  std::span<const std::int32_t> kv_indptr;  // [B + 1]
};

struct BatchRaggedPrefillArgs {
  TensorView q;          // [total_q, num_qo_heads, head_dim], read
  TensorView k;          // [total_kv, num_kv_heads, head_dim], read
  TensorView v;          // [total_kv, num_kv_heads, head_dim_v], read
  TensorView qo_indptr;  // int32 [B + 1]
  TensorView kv_indptr;  // int32 [B + 1]
  TensorView out;        // [total_q, num_qo_heads, head_dim_v], written
  TensorView lse;        // optional f32 [total_q, num_qo_heads], written
};

struct BatchRaggedPrefill : OpTypes<BatchRaggedPrefillDesc, BatchRaggedPrefillArgs, RaggedLengths> {
  static constexpr const char* kName = "BatchRaggedPrefill";
};
using BatchRaggedPrefillPlan = Plan<BatchRaggedPrefill>;

// ------------------------------------------------------ BatchPagedPrefill --

// Packed queries against paged KV (chunked prefill, prefix reuse): request b's
// q_len = qo_indptr[b+1] - qo_indptr[b] must not exceed its kv_len; its
// queries are the last q_len positions of its KV (query i at position
// i + kv_len - q_len). run() reads the page table and qo_indptr, which must
// hold what the last prepare() was given.
struct BatchPagedPrefillDesc {
  int max_batch = 0;
  int num_qo_heads = 0;
  PagedKvDesc kv;
  DType q_dtype = DType::bf16;
  bool causal = true;
  AttentionParams attn;
};

struct PagedPrefillLengths {
  std::span<const std::int32_t> qo_indptr;  // [B + 1]
  PagedKvLengths kv;                        // B requests
};

struct BatchPagedPrefillArgs {
  TensorView q;          // [total_q, num_qo_heads, head_dim], read
  TensorView qo_indptr;  // int32 [B + 1]
  PagedKv kv;            // B requests
  TensorView out;        // [total_q, num_qo_heads, head_dim], written
  TensorView lse;        // optional f32 [total_q, num_qo_heads], written
};

struct BatchPagedPrefill : OpTypes<BatchPagedPrefillDesc, BatchPagedPrefillArgs, PagedPrefillLengths> {
  static constexpr const char* kName = "BatchPagedPrefill";
};
using BatchPagedPrefillPlan = Plan<BatchPagedPrefill>;

// ------------------------------------------------------- CascadeAttention --

// Decode with shared prefixes, as one plan: requests are grouped (group g owns
// requests group_indptr[g]..group_indptr[g+1]); each group's prefix KV is
// attended once for all its requests' queries, each request's own suffix KV
// separately, and the two states merged. Equal (to rounding) to BatchPagedDecode
// over prefix + suffix pages: the query sits at position prefix_len +
// suffix_len - 1, which is where a sliding window counts back from. Groups may
// be empty, and a prefix or suffix may have no pages.
struct CascadeAttentionDesc {
  int max_batch = 0;
  int max_groups = 0;
  int num_qo_heads = 0;
  PagedKvDesc kv;  // prefix and suffix pages live in the same pools
  DType q_dtype = DType::bf16;
  AttentionParams attn;
};

struct CascadeLengths {
  std::span<const std::int32_t> group_indptr;  // [G + 1]
  PagedKvLengths prefix;                       // over G groups
  PagedKvLengths suffix;                       // over B requests
};

struct CascadeAttentionArgs {
  TensorView q;             // [B, num_qo_heads, head_dim], read
  TensorView group_indptr;  // int32 [G + 1], group_indptr[G] = B
  PagedKv prefix;           // G groups
  PagedKv suffix;           // B requests
  TensorView out;           // [B, num_qo_heads, head_dim], written
  TensorView lse;           // optional f32 [B, num_qo_heads], written
};

struct CascadeAttention : OpTypes<CascadeAttentionDesc, CascadeAttentionArgs, CascadeLengths> {
  static constexpr const char* kName = "CascadeAttention";
};
using CascadeAttentionPlan = Plan<CascadeAttention>;

}  // namespace kvserve
