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
 * "not given" (for optional arguments). Strides are in elements. */
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

#define KVS_MAX_RANK 6
typedef struct kvs_tensor {
  void* data;
  kvs_dtype dtype;
  int32_t rank;
  int64_t shape[KVS_MAX_RANK];
  int64_t strides[KVS_MAX_RANK];
  kvs_device device;
} kvs_tensor;

typedef enum kvs_kv_layout { KVS_NHD = 0, KVS_HND = 1 } kvs_kv_layout;

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

typedef struct kvs_paged_kv {
  kvs_tensor k_pages, v_pages, indptr, indices, last_page_len;
} kvs_paged_kv;

/* Every op's plan also has these three (shown once, for a generic X):
 *   size_t kvs_X_workspace_bytes(const kvs_X_plan* plan);   0 for NULL
 *   size_t kvs_X_kernel(const kvs_X_plan* plan, char* buf, size_t size);
 *       copies the kernel key (NUL-terminated, truncated to size), returns its full length
 *   void kvs_X_destroy(kvs_X_plan* plan);                   NULL is a no-op */
#define KVS_DECLARE_PLAN_COMMON(name)                                                  \
  size_t kvs_##name##_workspace_bytes(const kvs_##name##_plan* plan);                  \
  size_t kvs_##name##_kernel(const kvs_##name##_plan* plan, char* buf, size_t size);   \
  void kvs_##name##_destroy(kvs_##name##_plan* plan);

/* ----------------------------------------------------- BatchPagedDecode -- */

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
size_t kvs_batch_paged_decode_workspace_bytes(const kvs_batch_paged_decode_plan* plan);
kvs_status_code kvs_batch_paged_decode_prepare(kvs_batch_paged_decode_plan* plan, const int32_t* indptr,
                                               const int32_t* last_page_len, int64_t batch, void* workspace,
                                               size_t workspace_bytes, void* stream, kvs_error* err);
kvs_status_code kvs_batch_paged_decode_run(const kvs_batch_paged_decode_plan* plan,
                                           const kvs_batch_paged_decode_args* args, void* workspace,
                                           size_t workspace_bytes, void* stream, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(batch_paged_decode)

/* ------------------------------------------------------------------ RmsNorm -- */

typedef struct kvs_rms_norm_desc {
  int32_t hidden_size;
  kvs_dtype dtype;
  float eps;
  float weight_offset; /* 0, or 1 for Gemma's (1 + w) */
  int32_t fused_add;   /* nonzero: residual += x in place, then normalise residual */
} kvs_rms_norm_desc;

typedef struct kvs_rms_norm_args {
  kvs_tensor x, weight, residual, out;
} kvs_rms_norm_args;

typedef struct kvs_rms_norm_plan kvs_rms_norm_plan;
kvs_status_code kvs_rms_norm_create(const kvs_rms_norm_desc* desc, kvs_device device, kvs_rms_norm_plan** plan,
                                    kvs_error* err);
kvs_status_code kvs_rms_norm_run(const kvs_rms_norm_plan* plan, const kvs_rms_norm_args* args, void* workspace,
                                 size_t workspace_bytes, void* stream, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(rms_norm)

/* --------------------------------------------------------------- GdnPrefill -- */

typedef struct kvs_gdn_prefill_desc {
  int32_t max_batch;
  int64_t max_tokens;
  int32_t num_qk_heads, num_v_heads, head_dim_k, head_dim_v;
  kvs_dtype dtype;
  float scale; /* <= 0: 1/sqrt(head_dim_k) */
  int32_t use_qk_l2norm;
  float l2norm_eps;
} kvs_gdn_prefill_desc;

typedef struct kvs_gdn_prefill_args {
  kvs_tensor q, k, v, alpha, beta, cu_seqlens, initial_state, out, final_state;
} kvs_gdn_prefill_args;

typedef struct kvs_gdn_prefill_plan kvs_gdn_prefill_plan;
kvs_status_code kvs_gdn_prefill_create(const kvs_gdn_prefill_desc* desc, kvs_device device,
                                       kvs_gdn_prefill_plan** plan, kvs_error* err);
kvs_status_code kvs_gdn_prefill_run(const kvs_gdn_prefill_plan* plan, const kvs_gdn_prefill_args* args,
                                    void* workspace, size_t workspace_bytes, void* stream, kvs_error* err);
KVS_DECLARE_PLAN_COMMON(gdn_prefill)

#ifdef __cplusplus
}
#endif

#endif /* KVSERVE_H_ */
