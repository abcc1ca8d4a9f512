// Writing new K/V into a cache: the paged KV cache of the attention ops, the
// paged MLA cache, and the contiguous cache of SingleDecode.
//
// Every append op copies rows into cache slots the caller has already reserved
// (docs/kv_cache.md; BlockManager in block_manager.hpp reserves them for paged
// caches). It reads the new rows and the page table, writes only the addressed
// slots, and reads nothing else of the cache.
//
// What run() guarantees, for all three ops:
// - deterministic: each slot is written by exactly one row, so the result does
//   not depend on thread or block order (provided each slot is addressed at most
//   once; with duplicates, which row lands is unspecified);
// - in place by nature (the cache is the output); the new rows must not overlap
//   the cache;
// - no workspace, no prepare(): run() can be captured in a CUDA graph as is.
//
// Row and slot addressing lives in device memory, which run() cannot read for
// free. On the CPU (host memory) every batch index, position and page id is
// checked before anything is written, and a bad one is an InvalidArgument
// naming the argument, the row and the value. On a GPU they are the caller's
// contract: a kernel skips (writes nothing for) a row whose batch index,
// position or page id is out of range, so it never writes outside the cache,
// but it does not report the row.
#pragma once

#include <cstdint>

#include "kvserve/attention.hpp"

namespace kvserve {

// ---------------------------------------------------------- PagedKvAppend --

enum class AppendMode : std::uint8_t {
  // One new row per request: row b goes to the last slot of request b, at
  // position kv_len(b) - 1 of the page table handed in. That page table ALREADY
  // counts the new token: the caller (or BlockManager::append_tokens) reserved
  // the slot first (a new page when the last one was full, then last_page_len
  // incremented), so the same metadata serves this step's attention right after.
  // A request with no pages (kv_len 0, e.g. a padding row) is skipped.
  decode,
  // Any number of rows per request (prefill, chunked prefill, speculative
  // tokens): row i goes to request batch_indices[i] at position positions[i],
  // which must be below that request's kv_len (slots reserved first, as above).
  ragged,
};
std::string_view name_of(AppendMode m);

struct PagedKvAppendDesc {
  PagedKvDesc kv;             // the cache written; fp8 pools use kv.k_scale / kv.v_scale
  DType dtype = DType::bf16;  // the new rows k / v: kv.dtype, or f16 / bf16 / f32 into an fp8 pool
  AppendMode mode = AppendMode::decode;
};

// N new rows; B requests (from kv.indptr). Into an fp8 pool a row is quantised
// with its KV head's scale: stored = real / scale, rounded to nearest even,
// saturating at the type's largest finite value (the inverse of the attention
// ops' real = stored * scale). Other pools take the rows unchanged.
struct PagedKvAppendArgs {
  TensorView k;              // [N, num_kv_heads, head_dim], read (any strides, last dim contiguous)
  TensorView v;              // [N, num_kv_heads, head_dim], read
  TensorView batch_indices;  // ragged: int32 [N], in [0, B); decode: none (N = B)
  TensorView positions;      // ragged: int32 [N], in [0, kv_len(batch_indices[i])); decode: none
  PagedKv kv;                // k_pages / v_pages written at the addressed slots; page table read
};

struct PagedKvAppend : OpTypes<PagedKvAppendDesc, PagedKvAppendArgs> {
  static constexpr const char* kName = "PagedKvAppend";
};
using PagedKvAppendPlan = Plan<PagedKvAppend>;

// --------------------------------------------------------- PagedMlaAppend --

// Multi-head latent attention (DeepSeek) caches one compressed KV vector and
// one rope key per token, shared by all heads.
struct PagedMlaDesc {
  int page_size = 16;
  std::int64_t num_pages = 0;
  int ckv_dim = 512;  // compressed KV (latent) width
  int kpe_dim = 64;   // rope key width
  DType dtype = DType::bf16;  // pools and new rows: f16, bf16 or f32
};

// The paged MLA cache: two pools addressed by one page table (same CSR rules
// as PagedKv).
struct PagedMlaCache {
  TensorView ckv_pages;      // [num_pages, page_size, ckv_dim]
  TensorView kpe_pages;      // [num_pages, page_size, kpe_dim]
  TensorView indptr;         // int32 [B + 1]
  TensorView indices;        // int32 [>= indptr[B]], page ids in [0, num_pages)
  TensorView last_page_len;  // int32 [B]
};

// Row i goes to request batch_indices[i] at position positions[i] (< kv_len).
struct PagedMlaAppendArgs {
  TensorView ckv;            // [N, ckv_dim], read (row stride free, last dim contiguous)
  TensorView kpe;            // [N, kpe_dim], read
  TensorView batch_indices;  // int32 [N], in [0, B)
  TensorView positions;      // int32 [N], in [0, kv_len(batch_indices[i]))
  PagedMlaCache cache;       // ckv_pages / kpe_pages written at the addressed slots
};

struct PagedMlaAppend : OpTypes<PagedMlaDesc, PagedMlaAppendArgs> {
  static constexpr const char* kName = "PagedMlaAppend";
};
using PagedMlaAppendPlan = Plan<PagedMlaAppend>;

// ---------------------------------------------------------- KvCacheAppend --

// The contiguous cache of SingleDecode: k_cache / v_cache [B, num_kv_heads,
// L_max, head_dim]. Row i goes to batch row batch_indices[i] (i when
// batch_indices is not given) at position positions[i] < L_max.
struct KvCacheAppendDesc {
  int num_kv_heads = 0;
  int head_dim = 0;
  DType dtype = DType::bf16;  // rows and cache: f16, bf16 or f32
};

struct KvCacheAppendArgs {
  TensorView k;              // [N, num_kv_heads, head_dim], read (any strides, last dim contiguous)
  TensorView v;              // [N, num_kv_heads, head_dim], read
  TensorView batch_indices;  // optional int32 [N], in [0, B); none: row i -> batch row i (N <= B)
  TensorView positions;      // int32 [N], in [0, L_max)
  // Written: [B, num_kv_heads, L_max, head_dim], any non-zero strides (two
  // slots must not share memory), last dim contiguous; v_cache as k_cache.
  TensorView k_cache;
  TensorView v_cache;
};

struct KvCacheAppend : OpTypes<KvCacheAppendDesc, KvCacheAppendArgs> {
  static constexpr const char* kName = "KvCacheAppend";
};
using KvCacheAppendPlan = Plan<KvCacheAppend>;

}  // namespace kvserve
