/* Compiled as C: proves kvserve.h (every declaration in it) is a C header,
 * and drives a paged decode and the BlockManager through the C ABI on the
 * CPU. Each function returns 0 on success, else writes why. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kvserve/kvserve.h"

static kvs_tensor view(void* data, kvs_dtype dtype, int rank, const int64_t* shape) {
  kvs_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dtype;
  t.rank = rank;
  int64_t stride = 1;
  for (int i = rank - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.strides[i] = stride;
    stride *= shape[i];
  }
  t.device.kind = KVS_DEVICE_CPU;
  return t;
}

int kvs_capi_smoke(char* why, size_t why_size) {
  enum { PAGE = 4, HEADS = 1, DIM = 16, PAGES = 2, LEN = 6 };
  float q[HEADS * DIM], k[PAGES * PAGE * HEADS * DIM], v[PAGES * PAGE * HEADS * DIM], out[HEADS * DIM];
  int32_t indptr[2] = {0, 2}, indices[2] = {1, 0}, last[1] = {LEN - PAGE};
  for (int i = 0; i < HEADS * DIM; ++i) q[i] = (float)sin(0.3 * i), out[i] = NAN;
  for (int i = 0; i < PAGES * PAGE * HEADS * DIM; ++i) k[i] = (float)cos(0.1 * i), v[i] = (float)sin(0.2 * i);

  kvs_batch_paged_decode_desc desc;
  memset(&desc, 0, sizeof desc);
  desc.max_batch = 1;
  desc.num_qo_heads = HEADS;
  desc.kv.page_size = PAGE;
  desc.kv.num_pages = PAGES;
  desc.kv.num_kv_heads = HEADS;
  desc.kv.head_dim = DIM;
  desc.kv.dtype = KVS_F32;
  desc.kv.layout = KVS_NHD;
  desc.q_dtype = KVS_F32;
  desc.attn.window_left = -1;

  kvs_device cpu = {KVS_DEVICE_CPU, 0};
  kvs_batch_paged_decode_plan* plan = NULL;
  kvs_error err;
  /* A bad descriptor first: the error names the field. */
  desc.kv.page_size = 0;
  if (kvs_batch_paged_decode_create(&desc, cpu, &plan, &err) != KVS_INVALID_ARGUMENT ||
      strstr(err.message, "page_size") == NULL) {
    snprintf(why, why_size, "bad page_size not reported: %s", err.message);
    return 1;
  }
  desc.kv.page_size = PAGE;
  if (kvs_batch_paged_decode_create(&desc, cpu, &plan, &err) != KVS_OK) {
    snprintf(why, why_size, "create: %s", err.message);
    return 1;
  }
  if (kvs_batch_paged_decode_prepare(plan, indptr, last, 1, NULL, 0, NULL, &err) != KVS_OK) {
    snprintf(why, why_size, "prepare: %s", err.message);
    kvs_batch_paged_decode_destroy(plan);
    return 1;
  }
  const int64_t q_shape[3] = {1, HEADS, DIM}, pool_shape[4] = {PAGES, PAGE, HEADS, DIM}, two[1] = {2}, one[1] = {1};
  kvs_batch_paged_decode_args args;
  memset(&args, 0, sizeof args);
  args.q = view(q, KVS_F32, 3, q_shape);
  args.kv.k_pages = view(k, KVS_F32, 4, pool_shape);
  args.kv.v_pages = view(v, KVS_F32, 4, pool_shape);
  args.kv.indptr = view(indptr, KVS_INT32, 1, two);
  args.kv.indices = view(indices, KVS_INT32, 1, two);
  args.kv.last_page_len = view(last, KVS_INT32, 1, one);
  args.out = view(out, KVS_F32, 3, q_shape);
  kvs_status_code rc = kvs_batch_paged_decode_run(plan, &args, NULL, 0, NULL, &err);
  char key[128];
  kvs_batch_paged_decode_kernel(plan, key, sizeof key);
  kvs_batch_paged_decode_destroy(plan);
  if (rc != KVS_OK) {
    snprintf(why, why_size, "run: %s", err.message);
    return 1;
  }
  /* Direct computation of out[0]. */
  double s[LEN], m = -1e300, sum = 0, o = 0;
  for (int j = 0; j < LEN; ++j) {
    const int page = indices[j / PAGE], slot = j % PAGE;
    double dot = 0;
    for (int c = 0; c < DIM; ++c) dot += q[c] * k[(page * PAGE + slot) * DIM + c];
    s[j] = dot / sqrt((double)DIM);
    if (s[j] > m) m = s[j];
  }
  for (int j = 0; j < LEN; ++j) {
    const int page = indices[j / PAGE], slot = j % PAGE;
    sum += exp(s[j] - m);
    o += exp(s[j] - m) * v[(page * PAGE + slot) * DIM];
  }
  o /= sum;
  if (fabs(o - out[0]) > 1e-5) {
    snprintf(why, why_size, "out[0] = %f, expected %f (kernel %s)", out[0], o, key);
    return 1;
  }
  return 0;
}

/* A system prompt shared by a fork, a decode step for both, their page tables
 * (size query, then copy), exhaustion, and release. */
int kvs_capi_block_manager_smoke(char* why, size_t why_size) {
  enum { PAGE = 4, PAGES = 8 };
  kvs_block_manager* bm = NULL;
  kvs_error err;
  kvs_seq_id ids[2];
  int32_t indptr[3], indices[8], last[2];
  kvs_page_table table;
  int failed = 1;
  if (kvs_block_manager_create(PAGES, PAGE, &bm, &err) != KVS_OK) {
    snprintf(why, why_size, "create: %s", err.message);
    return 1;
  }
  /* 6 tokens (2 pages); the fork shares the full first page; one more slot each. */
  if (kvs_block_manager_add_sequence(bm, 6, &ids[0], &err) != KVS_OK ||
      kvs_block_manager_fork(bm, ids[0], -1, &ids[1], &err) != KVS_OK ||
      kvs_block_manager_append_tokens_batch(bm, ids, 2, 1, &err) != KVS_OK) {
    snprintf(why, why_size, "building sequences: %s", err.message);
    goto done;
  }
  memset(&table, 0, sizeof table);
  if (kvs_block_manager_page_table(bm, ids, 2, KVS_TABLE_ALL, &table, &err) != KVS_OK || table.num_indices != 4) {
    snprintf(why, why_size, "size query: %s (num_indices %lld)", err.message, (long long)table.num_indices);
    goto done;
  }
  table.indptr = indptr;
  table.indices = indices;
  table.indices_capacity = 8;
  table.last_page_len = last;
  if (kvs_block_manager_page_table(bm, ids, 2, KVS_TABLE_ALL, &table, &err) != KVS_OK) {
    snprintf(why, why_size, "page table: %s", err.message);
    goto done;
  }
  /* Sequence 0: 7 tokens in 2 pages; sequence 1: 5 tokens, its first page shared. */
  if (indptr[0] != 0 || indptr[1] != 2 || indptr[2] != 4 || last[0] != 3 || last[1] != 1 ||
      indices[0] != indices[2] || indices[1] == indices[3]) {
    snprintf(why, why_size, "unexpected table: indptr %d %d %d, last %d %d", indptr[0], indptr[1], indptr[2], last[0],
             last[1]);
    goto done;
  }
  if (kvs_block_manager_free_pages(bm) != PAGES - 3 ||
      kvs_block_manager_append_tokens(bm, ids[0], 100, &err) != KVS_RESOURCE_EXHAUSTED) {
    snprintf(why, why_size, "exhaustion not reported: %s", err.message);
    goto done;
  }
  if (kvs_block_manager_release(bm, ids[1], &err) != KVS_OK || kvs_block_manager_release(bm, ids[0], &err) != KVS_OK ||
      kvs_block_manager_free_pages(bm) != PAGES) {
    snprintf(why, why_size, "release: %s", err.message);
    goto done;
  }
  failed = 0;
done:
  kvs_block_manager_destroy(bm);
  return failed;
}
