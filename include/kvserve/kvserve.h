/* kvserve C ABI: every plan behind an opaque handle, errors as status codes
 * with a caller-owned error record (no global or thread-local state).
 *
 * Lifecycle of every op X (same as the C++ API):
 *   kvs_X_create(&desc, device, &plan, &err)        validate, select a kernel
 *   kvs_X_workspace_bytes(plan)                      bytes of workspace run/prepare need
 *   kvs_X_prepare(plan, host lengths..., ws, stream, &err)   ops scheduled from lengths
 *   kvs_X_run(plan, &args, ws, stream, &err)         asynchronous on CUDA
 *   kvs_X_kernel(plan, buf, size)                    the selected kernel's key
 *   kvs_X_destroy(plan)
 * `err` may be NULL. Tensors are kvs_tensor views; a tensor with data == NULL is
 * "not given" (for optional arguments). Strides are in elements.
 *
 * Each struct mirrors the C++ descriptor or argument struct of the same name
 * (the C++ headers say what every field means; shapes are repeated here), with
 * C encodings: booleans are int32_t (nonzero: true), enums have the C++ values,
 * and an optional value uses the sentinel its comment names. A NULL pointer
 * where a struct, handle or host array is expected is KVS_INVALID_ARGUMENT
 * naming the argument; no C++ exception crosses this ABI. */
#ifndef KVSERVE_H_
#define KVSERVE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kvs_status_code {
  KVS_OK = 0,
  KVS_INVALID_ARGUMENT = 1,
  KVS_UNSUPPORTED = 2,
  KVS_WORKSPACE_TOO_SMALL = 3,
  KVS_CUDA_ERROR = 4,
  KVS_INTERNAL = 5,
  KVS_RESOURCE_EXHAUSTED = 6 /* a host-side pool (BlockManager pages) is used up */
} kvs_status_code;

typedef struct kvs_error {
  kvs_status_code code;
  size_t workspace_needed; /* for KVS_WORKSPACE_TOO_SMALL */
  size_t workspace_got;
  char message[512];       /* NUL-terminated, truncated if longer */
} kvs_error;

typedef enum kvs_dtype {
  KVS_F16 = 0,
  KVS_BF16 = 1,
  KVS_F32 = 2,
  KVS_FP8_E4M3 = 3,
  KVS_FP8_E5M2 = 4,
  KVS_INT32 = 5
} kvs_dtype;

typedef enum kvs_device_kind { KVS_DEVICE_CPU = 0, KVS_DEVICE_CUDA = 1 } kvs_device_kind;
typedef struct kvs_device {
  kvs_device_kind kind;
  int32_t ordinal;
} kvs_device;

/* Upper bounds on descriptor sizes (kvserve/core.hpp says why each): a larger
 * value is KVS_INVALID_ARGUMENT naming the field, at create. */
#define KVS_MAX_BATCH 1048576           /* requests, rows, sequences or groups per run */
#define KVS_MAX_HEADS 1024             /* any head count */
#define KVS_MAX_HEAD_DIM 256           /* attention and GDN head dims */
#define KVS_MAX_ROW_WIDTH 65536        /* merged state head_dim, RmsNorm hidden_size, MLA widths */
#define KVS_MAX_PAGE_SIZE 1024         /* tokens per page */
#define KVS_MAX_PAGES 2147483647LL     /* pages in a pool (page ids are int32) */
#define KVS_MAX_TOKENS 2147483647LL    /* packed tokens per run */
#define KVS_MAX_SEQUENCE_LENGTH 1073741824 /* kv_split_tokens, window_left */
#define KVS_MAX_VOCAB 4194304
#define KVS_MAX_DRAFT_TOKENS 256

#define KVS_MAX_RANK 6
/* A view: rank outside [0, KVS_MAX_RANK] is refused naming the argument. */
typedef struct kvs_tensor {
  void* data;
  kvs_dtype dtype;
  int32_t rank; /* in [0, KVS_MAX_RANK] */
  int64_t shape[KVS_MAX_RANK];
  int64_t strides[KVS_MAX_RANK];
  kvs_device device;
} kvs_tensor;

/* Whether this build has the CUDA backend, and how many devices it sees (0
 * without the backend or a driver; never an error). */
int32_t kvs_cuda_backend_built(void);
int32_t kvs_cuda_device_count(void);

/* What a plan promises about its numbers (kvserve::Precision). */
typedef struct kvs_precision {
  kvs_dtype math;          /* type the products are formed in */
  kvs_dtype accumulator;   /* type sums and softmax state are kept in */
  int32_t deterministic;   /* same inputs, same plan: same bits, run to run */
  int32_t batch_invariant; /* a row's result ignores the rest of the batch */
} kvs_precision;

/* Every op's plan also has these (shown once, for a generic X):
 *    *   kvs_status_code kvs_X_can_implement(const kvs_X_plan* plan, const kvs_X_args* args, kvs_error* err);
 *       KVS_OK when run would accept args (run's checks of every tensor); launches nothing
 *   size_t kvs_X_workspace_bytes(const kvs_X_plan* plan);   0 for NULL
 *   size_t kvs_X_kernel(const kvs_X_plan* plan, char* buf, size_t size);
 *       copies the kernel key (NUL-terminated, truncated to size), returns its full length
 *   kvs_status_code kvs_X_precision(const kvs_X_plan* plan, kvs_precision* out, kvs_error* err);
 *   void kvs_X_destroy(kvs_X_plan* plan);                   NULL is a no-op */
#define KVS_DECLARE_PLAN_COMMON(name)                                                  \
  kvs_status_code kvs_##name##_run(const kvs_##name##_plan* plan, const kvs_##name##_args* args, \
                                   void* workspace, size_t workspace_bytes, void* stream, kvs_error* err); \
  kvs_status_code kvs_##name##_can_implement(const kvs_##name##_plan* plan, const kvs_##name##_args* args, \
                                             kvs_error* err);                          \
  kvs_status_code kvs_##name##_precision(const kvs_##name##_plan* plan, kvs_precision* out, kvs_error* err); \
  size_t kvs_##name##_workspace_bytes(const kvs_##name##_plan* plan);                  \
  size_t kvs_##name##_kernel(const kvs_##name##_plan* plan, char* buf, size_t size);   \
  void kvs_##name##_destroy(kvs_##name##_plan* plan);

/* ============================================= Attention (attention.hpp) == */

typedef enum kvs_kv_layout {
  KVS_NHD = 0, /* pool [num_pages, page_size, num_kv_heads, head_dim] */
  KVS_HND = 1  /* pool [num_pages, num_kv_heads, page_size, head_dim] */
} kvs_kv_layout;

/* Attention variants; sm_scale <= 0 means 1/sqrt(head_dim). */
typedef struct kvs_attention_params {
  float sm_scale;
  float logits_soft_cap; /* 0: off */
  int32_t window_left;   /* -1: off */
} kvs_attention_params;

typedef struct kvs_paged_kv_desc {
  int32_t page_size;
  int64_t num_pages;
  int32_t num_kv_heads;
  int32_t head_dim;
  kvs_dtype dtype;
  kvs_kv_layout layout;
  const float* k_scale; /* fp8 only: NULL, or num_k_scale (1 or num_kv_heads) values */
  int32_t num_k_scale;
  const float* v_scale;
  int32_t num_v_scale;
} kvs_paged_kv_desc;

/* Request b owns pages indices[indptr[b] .. indptr[b+1]), the last holding last_page_len[b] tokens. */
typedef struct kvs_paged_kv {
  kvs_tensor k_pages, v_pages; /* pools, layout as the descriptor says */
  kvs_tensor indptr;           /* int32 [B + 1] */
  kvs_tensor indices;          /* int32 [>= indptr[B]] */
  kvs_tensor last_page_len;    /* int32 [B] */
} kvs_paged_kv;

/* Checks a page table before a run reads it: the first bad entry comes back as
 * KVS_INVALID_ARGUMENT naming the request, position and value. The pools are
 * not read (kv->k_pages / v_pages may be left empty). */
kvs_status_code kvs_validate_page_table(const kvs_paged_kv_desc* desc, const kvs_paged_kv* kv, void* stream,
                                        kvs_error* err);

/* ------------------------------------------------------ BatchPagedDecode -- */

typedef struct kvs_batch_paged_decode_desc {
  int32_t max_batch;
  int32_t num_qo_heads;
  kvs_paged_kv_desc kv;
  kvs_dtype q_dtype;
  kvs_attention_params attn;
  int32_t kv_split_tokens; /* 0: chosen by the plan; > 0: batch invariant */
} kvs_batch_paged_decode_desc;

typedef struct kvs_batch_paged_decode_args {
  kvs_tensor q;   /* [B, num_qo_heads, head_dim] */
  kvs_paged_kv kv;
  kvs_tensor out; /* [B, num_qo_heads, head_dim] */
  kvs_tensor lse; /* optional f32 [B, num_qo_heads] */
} kvs_batch_paged_decode_args;

typedef struct kvs_batch_paged_decode_plan kvs_batch_paged_decode_plan;

kvs_status_code kvs_batch_paged_decode_create(const kvs_batch_paged_decode_desc* desc, kvs_device device,
                                              kvs_batch_paged_decode_plan** plan, kvs_error* err);
/* indptr [batch + 1], last_page_len [batch]: host copies of the page table's lengths. */
kvs_status_code kvs_batch_paged_decode_prepare(kvs_batch_paged_decode_plan* plan, const int32_t* indptr,
                                               const int32_t* last_page_len, int64_t batch, void* workspace,
                                               size_t workspace_bytes, void* stream, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(batch_paged_decode)

/* ---------------------------------------------------------- SingleDecode -- */

typedef struct kvs_single_decode_desc {
  int32_t max_batch;
  int32_t num_qo_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  kvs_dtype dtype; /* q, k, v and out */
  kvs_attention_params attn;
  int32_t kv_split_tokens; /* 0: chosen by the plan */
} kvs_single_decode_desc;

typedef struct kvs_single_decode_args {
  kvs_tensor q;      /* [B, num_qo_heads, head_dim] */
  kvs_tensor k, v;   /* [B, num_kv_heads, L, head_dim]; a head stride of 0 broadcasts one head */
  kvs_tensor kv_len; /* optional int32 [B], each in [0, L]; not given: L */
  kvs_tensor out;    /* [B, num_qo_heads, head_dim] */
  kvs_tensor lse;    /* optional f32 [B, num_qo_heads] */
} kvs_single_decode_args;

typedef struct kvs_single_decode_plan kvs_single_decode_plan;
kvs_status_code kvs_single_decode_create(const kvs_single_decode_desc* desc, kvs_device device,
                                         kvs_single_decode_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(single_decode)

/* --------------------------------------------------------- SinglePrefill -- */

typedef struct kvs_single_prefill_desc {
  int32_t num_qo_heads;
  int32_t num_kv_heads;
  int32_t head_dim;   /* q and k */
  int32_t head_dim_v; /* v and out; 0: head_dim */
  kvs_dtype dtype;
  kvs_kv_layout layout;
  int32_t causal;
  kvs_attention_params attn;
} kvs_single_prefill_desc;

typedef struct kvs_single_prefill_args {
  kvs_tensor q;    /* [L_q, num_qo_heads, head_dim] */
  kvs_tensor k;    /* NHD [L_kv, num_kv_heads, head_dim] / HND [num_kv_heads, L_kv, head_dim] */
  kvs_tensor v;    /* as k, with head_dim_v */
  kvs_tensor out;  /* [L_q, num_qo_heads, head_dim_v] */
  kvs_tensor lse;  /* optional f32 [L_q, num_qo_heads] */
} kvs_single_prefill_args;

typedef struct kvs_single_prefill_plan kvs_single_prefill_plan;
kvs_status_code kvs_single_prefill_create(const kvs_single_prefill_desc* desc, kvs_device device,
                                          kvs_single_prefill_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(single_prefill)

/* ---------------------------------------------------- BatchRaggedPrefill -- */

typedef struct kvs_batch_ragged_prefill_desc {
  int32_t max_batch;
  int32_t num_qo_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  int32_t head_dim_v; /* 0: head_dim */
  kvs_dtype dtype;
  int32_t causal;
  kvs_attention_params attn;
} kvs_batch_ragged_prefill_desc;

typedef struct kvs_batch_ragged_prefill_args {
  kvs_tensor q;         /* [total_q, num_qo_heads, head_dim] */
  kvs_tensor k;         /* [total_kv, num_kv_heads, head_dim] */
  kvs_tensor v;         /* [total_kv, num_kv_heads, head_dim_v] */
  kvs_tensor qo_indptr; /* int32 [B + 1], as given to the last prepare */
  kvs_tensor kv_indptr; /* int32 [B + 1], as given to the last prepare */
  kvs_tensor out;       /* [total_q, num_qo_heads, head_dim_v] */
  kvs_tensor lse;       /* optional f32 [total_q, num_qo_heads] */
} kvs_batch_ragged_prefill_args;

typedef struct kvs_batch_ragged_prefill_plan kvs_batch_ragged_prefill_plan;
kvs_status_code kvs_batch_ragged_prefill_create(const kvs_batch_ragged_prefill_desc* desc, kvs_device device,
                                                kvs_batch_ragged_prefill_plan** plan, kvs_error* err);
/* qo_indptr and kv_indptr: host arrays of batch + 1 entries. */
kvs_status_code kvs_batch_ragged_prefill_prepare(kvs_batch_ragged_prefill_plan* plan, const int32_t* qo_indptr,
                                                 const int32_t* kv_indptr, int64_t batch, void* workspace,
                                                 size_t workspace_bytes, void* stream, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(batch_ragged_prefill)

/* ----------------------------------------------------- BatchPagedPrefill -- */

typedef struct kvs_batch_paged_prefill_desc {
  int32_t max_batch;
  int32_t num_qo_heads;
  kvs_paged_kv_desc kv;
  kvs_dtype q_dtype;
  int32_t causal;
  kvs_attention_params attn;
} kvs_batch_paged_prefill_desc;

typedef struct kvs_batch_paged_prefill_args {
  kvs_tensor q;         /* [total_q, num_qo_heads, head_dim] */
  kvs_tensor qo_indptr; /* int32 [B + 1] */
  kvs_paged_kv kv;      /* B requests, each with q_len <= kv_len */
  kvs_tensor out;       /* [total_q, num_qo_heads, head_dim] */
  kvs_tensor lse;       /* optional f32 [total_q, num_qo_heads] */
} kvs_batch_paged_prefill_args;

typedef struct kvs_batch_paged_prefill_plan kvs_batch_paged_prefill_plan;
kvs_status_code kvs_batch_paged_prefill_create(const kvs_batch_paged_prefill_desc* desc, kvs_device device,
                                               kvs_batch_paged_prefill_plan** plan, kvs_error* err);
/* qo_indptr and kv_indptr [batch + 1], kv_last_page_len [batch]: host arrays. */
kvs_status_code kvs_batch_paged_prefill_prepare(kvs_batch_paged_prefill_plan* plan, const int32_t* qo_indptr,
                                                const int32_t* kv_indptr, const int32_t* kv_last_page_len,
                                                int64_t batch, void* workspace, size_t workspace_bytes,
                                                void* stream, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(batch_paged_prefill)

/* ------------------------------------------------------ CascadeAttention -- */

typedef struct kvs_cascade_attention_desc {
  int32_t max_batch;
  int32_t max_groups;
  int32_t num_qo_heads;
  kvs_paged_kv_desc kv; /* prefix and suffix pages live in the same pools */
  kvs_dtype q_dtype;
  kvs_attention_params attn;
} kvs_cascade_attention_desc;

typedef struct kvs_cascade_attention_args {
  kvs_tensor q;            /* [B, num_qo_heads, head_dim] */
  kvs_tensor group_indptr; /* int32 [G + 1], group_indptr[G] = B */
  kvs_paged_kv prefix;     /* G groups */
  kvs_paged_kv suffix;     /* B requests */
  kvs_tensor out;          /* [B, num_qo_heads, head_dim] */
  kvs_tensor lse;          /* optional f32 [B, num_qo_heads] */
} kvs_cascade_attention_args;

typedef struct kvs_cascade_attention_plan kvs_cascade_attention_plan;
kvs_status_code kvs_cascade_attention_create(const kvs_cascade_attention_desc* desc, kvs_device device,
                                             kvs_cascade_attention_plan** plan, kvs_error* err);
/* Host arrays: group_indptr [num_groups + 1]; the prefix table over the groups
 * (prefix_indptr [num_groups + 1], prefix_last_page_len [num_groups]); the
 * suffix table over the requests (suffix_indptr [batch + 1], suffix_last_page_len [batch]). */
kvs_status_code kvs_cascade_attention_prepare(kvs_cascade_attention_plan* plan, const int32_t* group_indptr,
                                              int64_t num_groups, const int32_t* prefix_indptr,
                                              const int32_t* prefix_last_page_len, const int32_t* suffix_indptr,
                                              const int32_t* suffix_last_page_len, int64_t batch, void* workspace,
                                              size_t workspace_bytes, void* stream, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(cascade_attention)

/* ===================================================== Merge (merge.hpp) == */

/* ------------------------------------------------------------ MergeState -- */

typedef struct kvs_merge_state_desc {
  int32_t num_heads;
  int32_t head_dim;
  kvs_dtype dtype; /* v_a, v_b and v_out */
} kvs_merge_state_desc;

/* In place allowed: v_out may be the same view as v_a or v_b, lse_out as lse_a or lse_b. */
typedef struct kvs_merge_state_args {
  kvs_tensor v_a;     /* [tokens, num_heads, head_dim] */
  kvs_tensor lse_a;   /* f32 [tokens, num_heads] */
  kvs_tensor v_b;     /* [tokens, num_heads, head_dim] */
  kvs_tensor lse_b;   /* f32 [tokens, num_heads] */
  kvs_tensor v_out;   /* [tokens, num_heads, head_dim] */
  kvs_tensor lse_out; /* optional f32 [tokens, num_heads] */
} kvs_merge_state_args;

typedef struct kvs_merge_state_plan kvs_merge_state_plan;
kvs_status_code kvs_merge_state_create(const kvs_merge_state_desc* desc, kvs_device device,
                                       kvs_merge_state_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(merge_state)

/* ----------------------------------------------------------- MergeStates -- */

typedef struct kvs_merge_states_desc {
  int32_t num_heads;
  int32_t head_dim;
  kvs_dtype dtype; /* v and v_out */
} kvs_merge_states_desc;

typedef struct kvs_merge_states_args {
  kvs_tensor v;       /* [tokens, N, num_heads, head_dim] */
  kvs_tensor lse;     /* f32 [tokens, N, num_heads] */
  kvs_tensor v_out;   /* [tokens, num_heads, head_dim] */
  kvs_tensor lse_out; /* optional f32 [tokens, num_heads] */
} kvs_merge_states_args;

typedef struct kvs_merge_states_plan kvs_merge_states_plan;
kvs_status_code kvs_merge_states_create(const kvs_merge_states_desc* desc, kvs_device device,
                                        kvs_merge_states_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(merge_states)

/* =============================================== KV cache (kv_cache.hpp) == */

/* --------------------------------------------------------- PagedKvAppend -- */

typedef enum kvs_append_mode {
  KVS_APPEND_DECODE = 0, /* row b into the last slot of request b (the page table already counts it) */
  KVS_APPEND_RAGGED = 1  /* row i into request batch_indices[i] at position positions[i] */
} kvs_append_mode;

typedef struct kvs_paged_kv_append_desc {
  kvs_paged_kv_desc kv; /* the cache written */
  kvs_dtype dtype;      /* the new rows: kv.dtype, or f16 / bf16 / f32 into an fp8 pool */
  kvs_append_mode mode;
} kvs_paged_kv_append_desc;

typedef struct kvs_paged_kv_append_args {
  kvs_tensor k;             /* [N, num_kv_heads, head_dim] */
  kvs_tensor v;             /* [N, num_kv_heads, head_dim] */
  kvs_tensor batch_indices; /* ragged: int32 [N]; decode: not given (N = B) */
  kvs_tensor positions;     /* ragged: int32 [N]; decode: not given */
  kvs_paged_kv kv;          /* pools written at the addressed slots */
} kvs_paged_kv_append_args;

typedef struct kvs_paged_kv_append_plan kvs_paged_kv_append_plan;
kvs_status_code kvs_paged_kv_append_create(const kvs_paged_kv_append_desc* desc, kvs_device device,
                                           kvs_paged_kv_append_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(paged_kv_append)

/* -------------------------------------------------------- PagedMlaAppend -- */

typedef struct kvs_paged_mla_desc {
  int32_t page_size;
  int64_t num_pages;
  int32_t ckv_dim; /* compressed KV width (DeepSeek: 512) */
  int32_t kpe_dim; /* rope key width (DeepSeek: 64) */
  kvs_dtype dtype; /* pools and new rows */
} kvs_paged_mla_desc;

typedef struct kvs_paged_mla_cache {
  kvs_tensor ckv_pages;     /* [num_pages, page_size, ckv_dim] */
  kvs_tensor kpe_pages;     /* [num_pages, page_size, kpe_dim] */
  kvs_tensor indptr;        /* int32 [B + 1] */
  kvs_tensor indices;       /* int32 [>= indptr[B]] */
  kvs_tensor last_page_len; /* int32 [B] */
} kvs_paged_mla_cache;

typedef struct kvs_paged_mla_append_args {
  kvs_tensor ckv;           /* [N, ckv_dim] */
  kvs_tensor kpe;           /* [N, kpe_dim] */
  kvs_tensor batch_indices; /* int32 [N] */
  kvs_tensor positions;     /* int32 [N] */
  kvs_paged_mla_cache cache;
} kvs_paged_mla_append_args;

typedef struct kvs_paged_mla_append_plan kvs_paged_mla_append_plan;
kvs_status_code kvs_paged_mla_append_create(const kvs_paged_mla_desc* desc, kvs_device device,
                                            kvs_paged_mla_append_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(paged_mla_append)

/* --------------------------------------------------------- KvCacheAppend -- */

typedef struct kvs_kv_cache_append_desc {
  int32_t num_kv_heads;
  int32_t head_dim;
  kvs_dtype dtype; /* rows and cache */
} kvs_kv_cache_append_desc;

typedef struct kvs_kv_cache_append_args {
  kvs_tensor k;             /* [N, num_kv_heads, head_dim] */
  kvs_tensor v;             /* [N, num_kv_heads, head_dim] */
  kvs_tensor batch_indices; /* optional int32 [N]; not given: row i -> batch row i */
  kvs_tensor positions;     /* int32 [N], in [0, L_max) */
  kvs_tensor k_cache;       /* [B, num_kv_heads, L_max, head_dim], written */
  kvs_tensor v_cache;       /* as k_cache */
} kvs_kv_cache_append_args;

typedef struct kvs_kv_cache_append_plan kvs_kv_cache_append_plan;
kvs_status_code kvs_kv_cache_append_create(const kvs_kv_cache_append_desc* desc, kvs_device device,
                                           kvs_kv_cache_append_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(kv_cache_append)

/* ============================================================ MLA (mla.hpp) == */

/* ------------------------------------------------- BatchPagedMlaDecode -- */

typedef struct kvs_batch_paged_mla_decode_desc {
  int32_t max_batch;
  int32_t num_heads;        /* query heads over the one latent KV */
  kvs_paged_mla_desc cache; /* its dtype is q's and out's too */
  float sm_scale;           /* required, > 0 (DeepSeek-V3: 1 / sqrt(192)) */
  int32_t kv_split_tokens;  /* 0: chosen by the plan; > 0: batch invariant */
} kvs_batch_paged_mla_decode_desc;

typedef struct kvs_batch_paged_mla_decode_args {
  kvs_tensor q_nope; /* [B, num_heads, ckv_dim] */
  kvs_tensor q_pe;   /* [B, num_heads, kpe_dim] */
  kvs_paged_mla_cache cache;
  kvs_tensor out; /* [B, num_heads, ckv_dim] */
  kvs_tensor lse; /* optional f32 [B, num_heads] */
} kvs_batch_paged_mla_decode_args;

typedef struct kvs_batch_paged_mla_decode_plan kvs_batch_paged_mla_decode_plan;

kvs_status_code kvs_batch_paged_mla_decode_create(const kvs_batch_paged_mla_decode_desc* desc, kvs_device device,
                                                  kvs_batch_paged_mla_decode_plan** plan, kvs_error* err);
/* indptr [batch + 1], last_page_len [batch]: host copies of the page table's lengths. */
kvs_status_code kvs_batch_paged_mla_decode_prepare(kvs_batch_paged_mla_decode_plan* plan, const int32_t* indptr,
                                                   const int32_t* last_page_len, int64_t batch, void* workspace,
                                                   size_t workspace_bytes, void* stream, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(batch_paged_mla_decode)

/* ====================================== BlockManager (block_manager.hpp) == */

/* A host-side page allocator handing out the page tables of the paged ops.
 * Every call either succeeds or leaves the manager unchanged; running out of
 * pages is KVS_RESOURCE_EXHAUSTED. Not thread-safe. */
typedef struct kvs_block_manager kvs_block_manager;
typedef int64_t kvs_seq_id; /* never reused */

typedef enum kvs_table_part {
  KVS_TABLE_ALL = 0,    /* every page of the sequence */
  KVS_TABLE_PREFIX = 1, /* the pages it got from fork() */
  KVS_TABLE_SUFFIX = 2  /* the pages after its shared prefix */
} kvs_table_part;

/* A page table written into caller-owned int32 buffers, in two calls: with
 * indptr == NULL a call only sets num_indices (a size query); with indptr
 * [rows + 1], last_page_len [rows] and indices_capacity >= num_indices it
 * writes all three (too small a capacity is KVS_INVALID_ARGUMENT, nothing written). */
typedef struct kvs_page_table {
  int32_t* indptr;
  int32_t* indices;
  int64_t indices_capacity;
  int32_t* last_page_len; /* 0 for a row without pages */
  int64_t num_indices;    /* set by every successful call: indptr[rows] */
} kvs_page_table;

/* num_pages in [1, 2^31 - 1], page_size >= 1. */
kvs_status_code kvs_block_manager_create(int64_t num_pages, int32_t page_size, kvs_block_manager** manager,
                                         kvs_error* err);
void kvs_block_manager_destroy(kvs_block_manager* manager); /* NULL is a no-op */
int64_t kvs_block_manager_free_pages(const kvs_block_manager* manager); /* 0 for NULL */
int64_t kvs_block_manager_num_pages(const kvs_block_manager* manager);     /* 0 for NULL */
int32_t kvs_block_manager_page_size(const kvs_block_manager* manager);     /* 0 for NULL */
int64_t kvs_block_manager_num_sequences(const kvs_block_manager* manager); /* 0 for NULL */
/* How many sequences reference page `page` (0: free). */
kvs_status_code kvs_block_manager_refcount(const kvs_block_manager* manager, int64_t page, int32_t* refcount,
                                           kvs_error* err);
/* Pages append_tokens(seq, tokens) would take. */
kvs_status_code kvs_block_manager_pages_needed(const kvs_block_manager* manager, kvs_seq_id seq, int64_t tokens,
                                               int64_t* pages, kvs_error* err);
/* What seq holds: tokens reserved, leading pages from fork(), pages in all
 * (their ids: kvs_block_manager_page_table with KVS_TABLE_ALL). */
typedef struct kvs_sequence_info {
  int64_t length;
  int64_t prefix_pages;
  int64_t num_pages;
} kvs_sequence_info;
kvs_status_code kvs_block_manager_sequence(const kvs_block_manager* manager, kvs_seq_id seq, kvs_sequence_info* info,
                                           kvs_error* err);
/* A new sequence with `tokens` slots reserved. */
kvs_status_code kvs_block_manager_add_sequence(kvs_block_manager* manager, int64_t tokens, kvs_seq_id* seq,
                                               kvs_error* err);
/* A sequence sharing the full pages among the first `tokens` tokens of parent
 * (-1: all of them); allocates no page. */
kvs_status_code kvs_block_manager_fork(kvs_block_manager* manager, kvs_seq_id parent, int64_t tokens,
                                       kvs_seq_id* child, kvs_error* err);
/* Reserves `tokens` more slots at the end of seq. */
kvs_status_code kvs_block_manager_append_tokens(kvs_block_manager* manager, kvs_seq_id seq, int64_t tokens,
                                                kvs_error* err);
/* The same for each of seqs [num_seqs] (no duplicates), all or nothing. */
kvs_status_code kvs_block_manager_append_tokens_batch(kvs_block_manager* manager, const kvs_seq_id* seqs,
                                                      int64_t num_seqs, int64_t tokens, kvs_error* err);
/* Shortens seq to `length` tokens, releasing the pages it no longer needs. */
kvs_status_code kvs_block_manager_truncate(kvs_block_manager* manager, kvs_seq_id seq, int64_t length,
                                           kvs_error* err);
kvs_status_code kvs_block_manager_release(kvs_block_manager* manager, kvs_seq_id seq, kvs_error* err);
/* One row per sequence of seqs [num_seqs], in order. */
kvs_status_code kvs_block_manager_page_table(const kvs_block_manager* manager, const kvs_seq_id* seqs,
                                             int64_t num_seqs, kvs_table_part part, kvs_page_table* table,
                                             kvs_error* err);
/* Tables for CascadeAttention: group g's members are the next group_sizes[g]
 * entries of members. Writes group_indptr [num_groups + 1] (unless NULL), the
 * prefix table (num_groups rows) and the suffix table (one row per member),
 * each as kvs_page_table says. */
kvs_status_code kvs_block_manager_cascade_tables(const kvs_block_manager* manager, const kvs_seq_id* members,
                                                 const int64_t* group_sizes, int64_t num_groups,
                                                 int32_t* group_indptr, kvs_page_table* prefix,
                                                 kvs_page_table* suffix, kvs_error* err);

/* =============================================== Sampling (sampling.hpp) == */

typedef enum kvs_sampling_input {
  KVS_SAMPLING_INPUT_PROBS = 0,
  KVS_SAMPLING_INPUT_LOGITS = 1 /* softmax at `temperature` */
} kvs_sampling_input;

typedef enum kvs_sampling_filter {
  KVS_FILTER_NONE = 0,
  KVS_FILTER_TOP_K = 1,
  KVS_FILTER_TOP_P = 2,
  KVS_FILTER_MIN_P = 3,
  KVS_FILTER_TOP_K_TOP_P = 4,
  KVS_FILTER_GREEDY = 5
} kvs_sampling_filter;

typedef enum kvs_top_k_top_p_order { KVS_ORDER_K_THEN_P = 0, KVS_ORDER_JOINT = 1 } kvs_top_k_top_p_order;

typedef enum kvs_param_source {
  KVS_PARAMS_SCALAR = 0, /* the descriptor's values */
  KVS_PARAMS_PER_ROW = 1 /* per-row tensors of the args */
} kvs_param_source;

typedef enum kvs_random_source {
  KVS_RANDOM_HOST = 0,   /* args seed / offset */
  KVS_RANDOM_PER_ROW = 1 /* args seeds / offsets tensors */
} kvs_random_source;

/* -------------------------------------------------------------- Sampling -- */

/* Scalar parameters' neutral values: temperature 1 (required for probs input),
 * top_k >= vocab, top_p 1, min_p 0; a filter reads only its own. */
typedef struct kvs_sampling_desc {
  int32_t vocab;
  int32_t max_batch;
  kvs_sampling_input input;
  kvs_sampling_filter filter;
  kvs_top_k_top_p_order order; /* top_k_top_p only */
  float temperature;
  int32_t top_k;
  float top_p;
  float min_p;
  kvs_param_source params;
  kvs_random_source random;
} kvs_sampling_desc;

typedef struct kvs_sampling_args {
  kvs_tensor input; /* f32 [B, vocab] */
  kvs_tensor out;   /* int32 [B]; -1: no token of positive weight */
  /* params == per_row, each only where the filter uses it: */
  kvs_tensor temperature; /* f32 [B] */
  kvs_tensor top_k;       /* int32 [B] */
  kvs_tensor top_p;       /* f32 [B] */
  kvs_tensor min_p;       /* f32 [B] */
  uint64_t seed;          /* random == host */
  uint64_t offset;
  kvs_tensor seeds;       /* int32 [B], random == per_row */
  kvs_tensor offsets;     /* int32 [B], random == per_row */
} kvs_sampling_args;

typedef struct kvs_sampling_plan kvs_sampling_plan;
kvs_status_code kvs_sampling_create(const kvs_sampling_desc* desc, kvs_device device, kvs_sampling_plan** plan,
                                    kvs_error* err);
KVS_DECLARE_PLAN_COMMON(sampling)

/* -------------------------------------------------------- SamplingRenorm -- */

typedef enum kvs_renorm_kind {
  KVS_TOP_K_RENORM_PROBS = 0,
  KVS_TOP_P_RENORM_PROBS = 1,
  KVS_TOP_K_MASK_LOGITS = 2
} kvs_renorm_kind;

typedef struct kvs_sampling_renorm_desc {
  int32_t vocab;
  int32_t max_batch;
  kvs_renorm_kind kind;
  int32_t top_k; /* top-k kinds */
  float top_p;   /* top_p_renorm_probs */
  kvs_param_source params;
} kvs_sampling_renorm_desc;

typedef struct kvs_sampling_renorm_args {
  kvs_tensor input; /* f32 [B, vocab] */
  kvs_tensor out;   /* f32 [B, vocab]; may be the same view as input */
  kvs_tensor top_k; /* int32 [B], per_row top-k kinds */
  kvs_tensor top_p; /* f32 [B], per_row top_p_renorm_probs */
} kvs_sampling_renorm_args;

typedef struct kvs_sampling_renorm_plan kvs_sampling_renorm_plan;
kvs_status_code kvs_sampling_renorm_create(const kvs_sampling_renorm_desc* desc, kvs_device device,
                                           kvs_sampling_renorm_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(sampling_renorm)

/* ========================================= Speculative (speculative.hpp) == */

/* ---------------------------------------------- ChainSpeculativeSampling -- */

typedef struct kvs_chain_speculative_sampling_desc {
  int32_t vocab;
  int32_t max_batch;
  int32_t num_draft_tokens; /* n */
  kvs_random_source random;
} kvs_chain_speculative_sampling_desc;

typedef struct kvs_chain_speculative_sampling_args {
  kvs_tensor draft_token_ids; /* int32 [B, n] */
  kvs_tensor draft_probs;     /* f32 [B, n, vocab] */
  kvs_tensor target_probs;    /* f32 [B, n + 1, vocab] */
  kvs_tensor out;             /* int32 [B, n + 1]: emitted drafts, the drawn token, then -1 */
  kvs_tensor accepted;        /* optional int32 [B]: positions passing their test */
  kvs_tensor emitted;         /* optional int32 [B]: drafts emitted */
  uint64_t seed;              /* random == host */
  uint64_t offset;
  kvs_tensor seeds;           /* int32 [B], random == per_row */
  kvs_tensor offsets;         /* int32 [B], random == per_row */
} kvs_chain_speculative_sampling_args;

typedef struct kvs_chain_speculative_sampling_plan kvs_chain_speculative_sampling_plan;
kvs_status_code kvs_chain_speculative_sampling_create(const kvs_chain_speculative_sampling_desc* desc,
                                                      kvs_device device, kvs_chain_speculative_sampling_plan** plan,
                                                      kvs_error* err);
KVS_DECLARE_PLAN_COMMON(chain_speculative_sampling)

/* ================================================= Penalty (penalty.hpp) == */

/* ---------------------------------------------------------- TokenPenalty -- */

typedef enum kvs_penalty_history {
  KVS_HISTORY_TOKEN_COUNTS = 0, /* counts int32 [B, vocab] */
  KVS_HISTORY_TOKEN_IDS = 1     /* token_ids int32 [B, L], ids outside [0, vocab) ignored */
} kvs_penalty_history;

/* Neutral values: repetition 1, frequency 0, presence 0. */
typedef struct kvs_token_penalty_desc {
  int32_t vocab;
  int32_t max_batch;
  kvs_penalty_history history;
  float repetition;
  float frequency;
  float presence;
  kvs_param_source params;
} kvs_token_penalty_desc;

typedef struct kvs_token_penalty_args {
  kvs_tensor logits;     /* f32 [B, vocab], updated in place */
  kvs_tensor counts;     /* int32 [B, vocab], history == token_counts */
  kvs_tensor token_ids;  /* int32 [B, L], history == token_ids */
  kvs_tensor repetition; /* f32 [B], params == per_row (all three) */
  kvs_tensor frequency;
  kvs_tensor presence;
} kvs_token_penalty_args;

typedef struct kvs_token_penalty_plan kvs_token_penalty_plan;
kvs_status_code kvs_token_penalty_create(const kvs_token_penalty_desc* desc, kvs_device device,
                                         kvs_token_penalty_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(token_penalty)

/* ======================================================= Norm (norm.hpp) == */

/* --------------------------------------------------------------- RmsNorm -- */

typedef struct kvs_rms_norm_desc {
  int32_t hidden_size;
  kvs_dtype dtype;
  float eps;
  float weight_offset; /* 0, or 1 for Gemma's (1 + w) */
  int32_t fused_add;   /* nonzero: residual += x in place, then normalise residual */
} kvs_rms_norm_desc;

typedef struct kvs_rms_norm_args {
  kvs_tensor x;        /* [rows, hidden_size] or [tokens, heads, hidden_size] */
  kvs_tensor weight;   /* [hidden_size] */
  kvs_tensor residual; /* fused_add only: shape of x */
  kvs_tensor out;      /* shape of x */
} kvs_rms_norm_args;

typedef struct kvs_rms_norm_plan kvs_rms_norm_plan;
kvs_status_code kvs_rms_norm_create(const kvs_rms_norm_desc* desc, kvs_device device, kvs_rms_norm_plan** plan,
                                    kvs_error* err);
KVS_DECLARE_PLAN_COMMON(rms_norm)

/* ========================================================= GDN (gdn.hpp) == */

/* ------------------------------------------------------------ GdnPrefill -- */

typedef struct kvs_gdn_prefill_desc {
  int32_t max_batch;
  int64_t max_tokens;
  int32_t num_qk_heads, num_v_heads, head_dim_k, head_dim_v;
  kvs_dtype dtype;
  float scale; /* <= 0: 1/sqrt(head_dim_k) */
  int32_t use_qk_l2norm;
  float l2norm_eps;
} kvs_gdn_prefill_desc;

/* T packed tokens, B sequences, H = max(num_qk_heads, num_v_heads). */
typedef struct kvs_gdn_prefill_args {
  kvs_tensor q, k;          /* [T, num_qk_heads, head_dim_k] */
  kvs_tensor v;             /* [T, num_v_heads, head_dim_v] */
  kvs_tensor alpha, beta;   /* f32 [T, H] */
  kvs_tensor cu_seqlens;    /* int32 [B + 1] */
  kvs_tensor initial_state; /* optional f32 [B, H, head_dim_v, head_dim_k]; not given: zeros */
  kvs_tensor out;           /* [T, H, head_dim_v] */
  kvs_tensor final_state;   /* optional f32 [B, H, head_dim_v, head_dim_k]; may be initial_state */
} kvs_gdn_prefill_args;

typedef struct kvs_gdn_prefill_plan kvs_gdn_prefill_plan;
kvs_status_code kvs_gdn_prefill_create(const kvs_gdn_prefill_desc* desc, kvs_device device,
                                       kvs_gdn_prefill_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(gdn_prefill)

/* ------------------------------------------------------------- GdnDecode -- */

typedef struct kvs_gdn_decode_desc {
  int32_t max_batch;
  int32_t num_state_slots; /* the state pool's first extent */
  int32_t num_qk_heads, num_v_heads, head_dim_k, head_dim_v;
  kvs_dtype dtype;
  float scale; /* <= 0: 1/sqrt(head_dim_k) */
  int32_t use_qk_l2norm;
  float l2norm_eps;
} kvs_gdn_decode_desc;

/* B sequences of one token each, H = max(num_qk_heads, num_v_heads). */
typedef struct kvs_gdn_decode_args {
  kvs_tensor q, k;          /* [B, num_qk_heads, head_dim_k] */
  kvs_tensor v;             /* [B, num_v_heads, head_dim_v] */
  kvs_tensor alpha, beta;   /* f32 [B, H] */
  kvs_tensor state_indices; /* int32 [B]: each sequence's slot, -1 for a padded row */
  kvs_tensor state;         /* f32 [num_state_slots, H, head_dim_v, head_dim_k], updated in place */
  kvs_tensor out;           /* [B, H, head_dim_v] */
} kvs_gdn_decode_args;

typedef struct kvs_gdn_decode_plan kvs_gdn_decode_plan;
kvs_status_code kvs_gdn_decode_create(const kvs_gdn_decode_desc* desc, kvs_device device,
                                      kvs_gdn_decode_plan** plan, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(gdn_decode)

#ifdef __cplusplus
}
#endif

#endif /* KVSERVE_H_ */
