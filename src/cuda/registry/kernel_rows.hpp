// The CUDA kernel registry as data: one row per compiled configuration of
// every CUDA family. Everything else is generated from these rows: the
// instantiations (each family's shard .cu files instantiate the rows they
// pick, registry/instantiate.hpp), selection (registry.cpp answers a plan's
// one lookup, or Unsupported listing the family's rows), `kvserve list` and
// docs/support-matrix.md. Adding a configuration is adding a row here.
// Host-only C++ (no CUDA headers): .cpp and .cu files both read it.
#pragma once

#include <cstdint>
#include <string_view>

#include "kvserve/dtype.hpp"

namespace kvserve::detail::cuda {

// A family is one kernel (template) and the ops it serves.
enum class Family : std::uint8_t {
  paged_decode,   // paged_decode/: BatchPagedDecode
  mla_decode,     // mla_decode/: BatchPagedMlaDecode
  single_decode,  // single_decode/: SingleDecode
  multi_query,    // multi_query/: CascadeAttention and the three prefill ops
  paged_append,   // kv_cache/: PagedKvAppend
  mla_append,     // kv_cache/: PagedMlaAppend (the same kernel)
  cache_append,   // kv_cache/: KvCacheAppend (the same kernel)
  merge,          // merge/: MergeState, MergeStates
  norm,           // norm/: RmsNorm (plain, Gemma, fused add, QK norm)
  gdn,            // gdn/: GdnPrefill, GdnDecode (one recurrent kernel)
  sampling,       // sampling/: Sampling
  renorm,         // sampling/: SamplingRenorm
  speculative,    // sampling/: ChainSpeculativeSampling
  penalty,        // sampling/: TokenPenalty
};

// head_dim of a row whose kernel takes every head_dim (or has none).
inline constexpr int kAnyHeadDim = 0;
// head_dim (hidden_size for RmsNorm) of a row whose kernel takes any multiple
// of its 16-byte chunk: 8 f16 / bf16 elements, 4 f32.
inline constexpr int kChunkMultiple = -1;

// What a row is compiled for; everything else (layout, page size, GQA
// ratio, strides, soft-cap, window, split) is a run-time value. A structural
// type, so that a row can be a template argument of its instantiation.
struct KernelRow {
  Family family;
  DType q;       // the input's dtype (q, rows, logits, states; out has it too)
  DType kv;      // the cache's dtype (= q where the op has one dtype)
  int head_dim;  // exact, kAnyHeadDim or kChunkMultiple
};

// clang-format off
inline constexpr KernelRow kKernelRows[] = {
    // paged_decode/decode_<kv>.cu: q/out dtype x KV pool dtype x head_dim.
    {Family::paged_decode, DType::f16, DType::f16, 64}, {Family::paged_decode, DType::f16, DType::f16, 128},
    {Family::paged_decode, DType::f16, DType::f16, 256},
    {Family::paged_decode, DType::bf16, DType::bf16, 64}, {Family::paged_decode, DType::bf16, DType::bf16, 128},
    {Family::paged_decode, DType::bf16, DType::bf16, 256},
    {Family::paged_decode, DType::f32, DType::f32, 64}, {Family::paged_decode, DType::f32, DType::f32, 128},
    {Family::paged_decode, DType::f32, DType::f32, 256},
    {Family::paged_decode, DType::f16, DType::fp8_e4m3, 64}, {Family::paged_decode, DType::f16, DType::fp8_e4m3, 128},
    {Family::paged_decode, DType::f16, DType::fp8_e4m3, 256},
    {Family::paged_decode, DType::bf16, DType::fp8_e4m3, 64}, {Family::paged_decode, DType::bf16, DType::fp8_e4m3, 128},
    {Family::paged_decode, DType::bf16, DType::fp8_e4m3, 256},
    {Family::paged_decode, DType::f16, DType::fp8_e5m2, 64}, {Family::paged_decode, DType::f16, DType::fp8_e5m2, 128},
    {Family::paged_decode, DType::f16, DType::fp8_e5m2, 256},
    {Family::paged_decode, DType::bf16, DType::fp8_e5m2, 64}, {Family::paged_decode, DType::bf16, DType::fp8_e5m2, 128},
    {Family::paged_decode, DType::bf16, DType::fp8_e5m2, 256},
    // mla_decode/mla_decode.cu: q = cache = out dtype, ckv_dim 512 (kpe_dim 64).
    {Family::mla_decode, DType::f16, DType::f16, 512}, {Family::mla_decode, DType::bf16, DType::bf16, 512},
    // single_decode/single_decode_<dtype>.cu: dtype x head_dim (contiguous caches).
    {Family::single_decode, DType::f16, DType::f16, 64}, {Family::single_decode, DType::f16, DType::f16, 128},
    {Family::single_decode, DType::f16, DType::f16, 256},
    {Family::single_decode, DType::bf16, DType::bf16, 64}, {Family::single_decode, DType::bf16, DType::bf16, 128},
    {Family::single_decode, DType::bf16, DType::bf16, 256},
    {Family::single_decode, DType::f32, DType::f32, 64}, {Family::single_decode, DType::f32, DType::f32, 128},
    {Family::single_decode, DType::f32, DType::f32, 256},
    // multi_query/multi_query_<dtype>.cu: q = KV = out dtype x head_dim, with the slot merge of that dtype.
    {Family::multi_query, DType::f16, DType::f16, 64}, {Family::multi_query, DType::f16, DType::f16, 128},
    {Family::multi_query, DType::f16, DType::f16, 256},
    {Family::multi_query, DType::bf16, DType::bf16, 64}, {Family::multi_query, DType::bf16, DType::bf16, 128},
    {Family::multi_query, DType::bf16, DType::bf16, 256},
    // kv_cache/append.cu: new rows' dtype x pool dtype (fp8 pools also take
    // f16 / bf16 / f32 rows, quantised with the descriptor's scales).
    {Family::paged_append, DType::f16, DType::f16, kAnyHeadDim},
    {Family::paged_append, DType::bf16, DType::bf16, kAnyHeadDim},
    {Family::paged_append, DType::f32, DType::f32, kAnyHeadDim},
    {Family::paged_append, DType::fp8_e4m3, DType::fp8_e4m3, kAnyHeadDim},
    {Family::paged_append, DType::fp8_e5m2, DType::fp8_e5m2, kAnyHeadDim},
    {Family::paged_append, DType::f16, DType::fp8_e4m3, kAnyHeadDim},
    {Family::paged_append, DType::bf16, DType::fp8_e4m3, kAnyHeadDim},
    {Family::paged_append, DType::f32, DType::fp8_e4m3, kAnyHeadDim},
    {Family::paged_append, DType::f16, DType::fp8_e5m2, kAnyHeadDim},
    {Family::paged_append, DType::bf16, DType::fp8_e5m2, kAnyHeadDim},
    {Family::paged_append, DType::f32, DType::fp8_e5m2, kAnyHeadDim},
    // kv_cache/append.cu too: the MLA cache (ckv_dim and kpe_dim multiples of
    // the 16-byte chunk) and the contiguous cache, rows = cache dtype.
    {Family::mla_append, DType::f16, DType::f16, kAnyHeadDim},
    {Family::mla_append, DType::bf16, DType::bf16, kAnyHeadDim},
    {Family::mla_append, DType::f32, DType::f32, kAnyHeadDim},
    {Family::cache_append, DType::f16, DType::f16, kAnyHeadDim},
    {Family::cache_append, DType::bf16, DType::bf16, kAnyHeadDim},
    {Family::cache_append, DType::f32, DType::f32, kAnyHeadDim},
    // merge/merge_<dtype>.cu: state dtype.
    {Family::merge, DType::f16, DType::f16, kChunkMultiple},
    {Family::merge, DType::bf16, DType::bf16, kChunkMultiple},
    {Family::merge, DType::f32, DType::f32, kChunkMultiple},
    // norm/norm.cu: dtype (hidden_size is the row's head_dim).
    {Family::norm, DType::f16, DType::f16, kChunkMultiple},
    {Family::norm, DType::bf16, DType::bf16, kChunkMultiple},
    {Family::norm, DType::f32, DType::f32, kChunkMultiple},
    // gdn/gdn.cu: q / k / v / out dtype (state f32), any d_k and d_v.
    {Family::gdn, DType::f16, DType::f16, kAnyHeadDim},
    {Family::gdn, DType::bf16, DType::bf16, kAnyHeadDim},
    {Family::gdn, DType::f32, DType::f32, kAnyHeadDim},
    // sampling/: f32 rows of any vocabulary; the launcher picks the
    // instantiation for the input kind and filter (or renorm kind) at run time.
    {Family::sampling, DType::f32, DType::f32, kAnyHeadDim},
    {Family::renorm, DType::f32, DType::f32, kAnyHeadDim},
    {Family::speculative, DType::f32, DType::f32, kAnyHeadDim},
    {Family::penalty, DType::f32, DType::f32, kAnyHeadDim},
};
// clang-format on

inline constexpr int kKernelRowCount = static_cast<int>(std::size(kKernelRows));

// The ops each family serves, with the run-time range every row of the
// family accepts, as `kvserve list` and docs/support-matrix.md print it.
struct FamilyOp {
  std::string_view op;
  Family family;
  std::string_view accepts;
};
inline constexpr FamilyOp kFamilyOps[] = {
    {"MergeState", Family::merge, "N = 2, any strides"},
    {"MergeStates", Family::merge, "N <= 12288, any strides"},
    {"PagedKvAppend", Family::paged_append, "decode|ragged, NHD|HND, any page size and head_dim"},
    {"PagedMlaAppend", Family::mla_append, "any page size, ckv_dim and kpe_dim multiples of 16 bytes"},
    {"KvCacheAppend", Family::cache_append, "any cache strides, batch_indices or not"},
    {"BatchPagedDecode", Family::paged_decode, "layout=NHD|HND any page size and GQA ratio"},
    {"BatchPagedMlaDecode", Family::mla_decode, "kpe_dim 64, any page size, 1 to 64 heads a block, split along L"},
    {"SingleDecode", Family::single_decode,
     "any strides (head stride 0 allowed), GQA ratio and L, split along L"},
    {"RmsNorm", Family::norm, "plain|Gemma|fused add|QK norm, any row strides"},
    {"GdnPrefill", Family::gdn, "recurrent (token by token), any GQA/GVA ratio, d_k and d_v, state in place"},
    {"GdnDecode", Family::gdn, "any GQA/GVA ratio, d_k and d_v; slots in any order, -1 padded rows"},
    {"CascadeAttention", Family::multi_query, "layout=NHD|HND any page size and GQA ratio, prefix split <= 8"},
    {"BatchPagedPrefill", Family::multi_query, "layout=NHD|HND any page size and GQA ratio, causal or not"},
    {"BatchRaggedPrefill", Family::multi_query, "head_dim_v = head_dim, any GQA ratio, causal or not"},
    {"SinglePrefill", Family::multi_query, "layout=NHD|HND head_dim_v = head_dim, any GQA ratio, causal or not"},
    {"Sampling", Family::sampling,
     "probs|logits x every filter (a kernel each), scalar|per_row params and seeds, vocab <= 4194304"},
    {"SamplingRenorm", Family::renorm,
     "top_k_renorm_probs|top_p_renorm_probs|top_k_mask_logits (a kernel each), in place allowed"},
    {"ChainSpeculativeSampling", Family::speculative, "any n, host|per_row seeds"},
    {"TokenPenalty", Family::penalty, "token_counts|token_ids history, scalar|per_row params"},
};

}  // namespace kvserve::detail::cuda
