// Fuzz target: the C ABI (kvserve.h). What only the C boundary has: NULL
// descriptors / plans / args / errors, enum values outside their range,
// devices of unknown kind, fp8 scale arrays with their counts, small message
// and kernel-key buffers, and the BlockManager driven by a sequence of calls
// (add, fork, append, truncate, release, page tables) whose tables then feed
// BatchPagedDecode and CascadeAttention through the C ABI.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "kvserve/kvserve.h"

namespace kvserve::fuzz {

namespace {

// A C enum holding any int, as a C caller may store it (C++ may form such a
// value only through the object's bytes).
template <class E>
void put(E& field, int value) {
  static_assert(sizeof(E) == sizeof(int));
  std::memcpy(&field, &value, sizeof field);
}

kvs_tensor to_c(const TensorView& t) {
  kvs_tensor c{};
  c.data = t.data;
  put(c.dtype, static_cast<int>(t.dtype));
  c.rank = t.rank;
  for (int i = 0; i < kMaxRank; ++i) {
    c.shape[i] = t.shape[i];
    c.strides[i] = t.strides[i];
  }
  c.device = {KVS_DEVICE_CPU, 0};
  return c;
}

void check(kvs_status_code code, const kvs_error* err) {
  if (code != KVS_OK && err && err->message[0] == '\0') __builtin_trap();
  if (err && std::memchr(err->message, '\0', sizeof err->message) == nullptr) __builtin_trap();
}

kvs_device device(FuzzInput& in) {
  switch (in.u8() % 16) {
    case 0: { kvs_device d{KVS_DEVICE_CPU, 0}; put(d.kind, 2 + in.u8()); return d; }
    case 1: return {KVS_DEVICE_CUDA, in.u8() % 3};
    case 2: return {KVS_DEVICE_CPU, static_cast<int32_t>(in.u32())};
    default: return {KVS_DEVICE_CPU, 0};
  }
}

// BlockManager calls picked by the input, then its tables fed to attention.
void block_manager(FuzzInput& in, Arena& a) {
  kvs_error err{};
  kvs_block_manager* bm = nullptr;
  int64_t num_pages = in.size(8, KVS_MAX_PAGES);
  int32_t page_size = in.isize(1 + in.u8() % 4, KVS_MAX_PAGE_SIZE);
  kvs_status_code code = kvs_block_manager_create(num_pages > 64 ? 64 : num_pages, page_size, &bm, &err);
  check(code, &err);
  if (code != KVS_OK) return;
  std::vector<kvs_seq_id> seqs;
  auto any_seq = [&]() -> kvs_seq_id {
    if (seqs.empty() || in.pick(8) == 0) return static_cast<int64_t>(in.u8()) - 4;  // unknown ids
    return seqs[in.u8() % seqs.size()];
  };
  for (int step = 0, steps = in.u8() % 12; step < steps; ++step) {
    kvs_seq_id s = 0;
    switch (in.pick(8)) {
      case 0:
        code = kvs_block_manager_add_sequence(bm, in.size(3, 1 << 20), &s, &err);
        if (code == KVS_OK) seqs.push_back(s);
        break;
      case 1:
        code = kvs_block_manager_fork(bm, any_seq(), in.size(-1, 1 << 20), &s, &err);
        if (code == KVS_OK) seqs.push_back(s);
        break;
      case 2: code = kvs_block_manager_append_tokens(bm, any_seq(), in.size(1, 1 << 20), &err); break;
      case 3: code = kvs_block_manager_truncate(bm, any_seq(), in.size(1, 1 << 20), &err); break;
      case 4: code = kvs_block_manager_release(bm, any_seq(), &err); break;
      case 5: {
        std::vector<kvs_seq_id> batch;
        for (int i = 0, n = in.u8() % 4; i < n; ++i) batch.push_back(any_seq());
        code = kvs_block_manager_append_tokens_batch(bm, batch.data(), static_cast<int64_t>(batch.size()),
                                                     in.size(1, 64), &err);
        break;
      }
      case 6: {
        int64_t pages = 0;
        code = kvs_block_manager_pages_needed(bm, any_seq(), in.size(5, 1 << 20), &pages, &err);
        int32_t rc = 0;
        check(code, &err);
        code = kvs_block_manager_refcount(bm, in.size(0, 64), &rc, &err);
        break;
      }
      default: {
        kvs_sequence_info info{};
        code = kvs_block_manager_sequence(bm, any_seq(), &info, &err);
        break;
      }
    }
    check(code, &err);
  }

  // Page tables of some of the sequences (duplicates and unknown ids allowed).
  std::vector<kvs_seq_id> rows;
  for (int i = 0, n = in.u8() % 4; i < n; ++i) rows.push_back(any_seq());
  kvs_table_part part = KVS_TABLE_ALL;
  put(part, in.u8() % 4);
  kvs_page_table t{};
  code = kvs_block_manager_page_table(bm, rows.data(), static_cast<int64_t>(rows.size()), part, &t, &err);
  check(code, &err);
  std::vector<int32_t> indptr(rows.size() + 1), last(rows.size() + 1);
  std::vector<int32_t> indices(code == KVS_OK && t.num_indices > 0 && t.num_indices < 4096 ? t.num_indices : 1);
  if (code == KVS_OK) {
    t.indptr = indptr.data();
    t.last_page_len = last.data();
    t.indices = indices.data();
    t.indices_capacity = in.pick(8) == 0 ? t.num_indices - 1 : static_cast<int64_t>(indices.size());
    code = kvs_block_manager_page_table(bm, rows.data(), static_cast<int64_t>(rows.size()), part, &t, &err);
    check(code, &err);
  }
  if (code == KVS_OK) {
    // The table through BatchPagedDecode (f32, 1 KV head, head_dim 16).
    kvs_batch_paged_decode_desc d{};
    d.max_batch = 4;
    d.num_qo_heads = 1;
    d.kv = {page_size, num_pages > 64 ? 64 : num_pages, 1, 16, KVS_F32, KVS_NHD, nullptr, 0, nullptr, 0};
    d.q_dtype = KVS_F32;
    d.attn = {0.f, 0.f, -1};
    kvs_batch_paged_decode_plan* plan = nullptr;
    code = kvs_batch_paged_decode_create(&d, {KVS_DEVICE_CPU, 0}, &plan, &err);
    check(code, &err);
    if (code == KVS_OK) {
      int64_t b = static_cast<int64_t>(rows.size());
      std::vector<int32_t> li(indices.begin(), indices.begin() + (t.num_indices > 0 ? t.num_indices : 0));
      kvs_batch_paged_decode_args args{};
      args.q = to_c(a.tensor(DType::f32, {b, 1, 16}));
      args.out = to_c(a.tensor(DType::f32, {b, 1, 16}));
      args.kv.k_pages = to_c(a.tensor(DType::f32, {d.kv.num_pages, page_size, 1, 16}));
      args.kv.v_pages = to_c(a.tensor(DType::f32, {d.kv.num_pages, page_size, 1, 16}));
      args.kv.indptr = to_c(a.ints(indptr));
      args.kv.indices = to_c(a.ints(li));
      args.kv.last_page_len = to_c(a.ints(std::vector<int32_t>(last.begin(), last.begin() + b)));
      code = kvs_validate_page_table(&d.kv, &args.kv, nullptr, &err);
      check(code, &err);
      code = kvs_batch_paged_decode_prepare(plan, indptr.data(), last.data(), b, nullptr, 0, nullptr, &err);
      check(code, &err);
      code = kvs_batch_paged_decode_run(plan, &args, nullptr, 0, nullptr, &err);
      check(code, &err);
    }
    kvs_batch_paged_decode_destroy(plan);
  }
  kvs_block_manager_destroy(bm);
}

// NULLs, bad enums, fp8 scales and small buffers at the boundary, on RmsNorm,
// Sampling and BatchPagedDecode.
void boundary(FuzzInput& in, Arena& a) {
  kvs_error err_storage{};
  kvs_error* err = in.pick(8) == 0 ? nullptr : &err_storage;

  DType nd_dtype = in.enumeration(8, DType::f32);
  kvs_rms_norm_desc nd{in.isize(16, KVS_MAX_ROW_WIDTH), KVS_F32, in.param(1e-6f), 0.f, in.flag()};
  put(nd.dtype, static_cast<int>(nd_dtype));
  kvs_rms_norm_plan* np = nullptr;
  kvs_status_code code = kvs_rms_norm_create(in.pick(16) == 0 ? nullptr : &nd, device(in),
                                             in.pick(16) == 0 ? nullptr : &np, err);
  check(code, err);
  std::int64_t rows = in.u8() % 3;
  kvs_rms_norm_args na{};
  na.x = to_c(a.tensor(nd_dtype, {rows, nd.hidden_size}));
  na.weight = to_c(a.tensor(nd_dtype, {nd.hidden_size}));
  if (nd.fused_add) na.residual = to_c(a.tensor(nd_dtype, {rows, nd.hidden_size}));
  na.out = to_c(a.tensor(nd_dtype, {rows, nd.hidden_size}));
  if (in.pick(8) == 0) na.x.device = device(in);
  if (in.pick(8) == 0) put(na.x.dtype, in.u8());
  const kvs_rms_norm_plan* run_plan = in.pick(8) == 0 ? nullptr : np;
  check(kvs_rms_norm_can_implement(run_plan, in.pick(16) == 0 ? nullptr : &na, err), err);
  check(kvs_rms_norm_run(run_plan, in.pick(16) == 0 ? nullptr : &na, nullptr, 0, nullptr, err), err);
  char key[64];
  std::memset(key, '#', sizeof key);
  std::size_t key_size = in.u8() % sizeof key;
  char* buf = in.flag() ? key : nullptr;
  (void)kvs_rms_norm_kernel(run_plan, buf, key_size);
  if (buf && key_size > 0 && run_plan && std::memchr(key, '\0', key_size) == nullptr) __builtin_trap();
  kvs_precision prec{};
  check(kvs_rms_norm_precision(run_plan, in.pick(8) == 0 ? nullptr : &prec, err), err);
  (void)kvs_rms_norm_workspace_bytes(run_plan);
  kvs_rms_norm_destroy(np);

  kvs_sampling_desc sd{};
  sd.vocab = in.isize(16, KVS_MAX_VOCAB);
  sd.max_batch = in.isize(2, KVS_MAX_BATCH);
  put(sd.input, in.pick(3));
  put(sd.filter, in.pick(7));
  put(sd.order, in.pick(3));
  sd.temperature = in.param(1.f);
  sd.top_k = in.isize(4, KVS_MAX_VOCAB);
  sd.top_p = in.param(0.9f);
  sd.min_p = in.param(0.f);
  put(sd.params, in.pick(3));
  put(sd.random, in.pick(3));
  kvs_sampling_plan* sp = nullptr;
  code = kvs_sampling_create(&sd, device(in), &sp, err);
  check(code, err);
  if (code == KVS_OK) {
    std::int64_t b = in.u8() % 3;
    kvs_sampling_args sa{};
    sa.input = to_c(a.tensor(DType::f32, {b, sd.vocab}));
    sa.out = to_c(a.tensor(DType::int32, {b}));
    sa.top_k = to_c(a.tensor(DType::int32, {b}, index_bound(2 * std::int64_t{sd.vocab})));
    sa.top_p = to_c(a.tensor(DType::f32, {b}));
    sa.min_p = to_c(a.tensor(DType::f32, {b}));
    sa.temperature = to_c(a.tensor(DType::f32, {b}));
    sa.seeds = to_c(a.tensor(DType::int32, {b}, 100));
    sa.offsets = to_c(a.tensor(DType::int32, {b}, 100));
    check(kvs_sampling_run(sp, &sa, nullptr, 0, nullptr, err), err);
  }
  kvs_sampling_destroy(sp);

  // fp8 pools with scale arrays: counts 0..3 over real arrays, or negative.
  float ks[3] = {in.param(0.5f), in.param(1.f), in.param(2.f)};
  float vs[3] = {in.param(0.5f), in.param(1.f), in.param(2.f)};
  kvs_batch_paged_decode_desc dd{};
  dd.max_batch = 2;
  dd.num_qo_heads = 2;
  int32_t nk = in.pick(8) == 0 ? -1 - in.pick(3) : in.pick(4), nv = in.pick(4);
  dd.kv = {4, 4, in.isize(2, KVS_MAX_HEADS), 16, KVS_F32, KVS_NHD, nk > 0 ? ks : nullptr, nk, in.flag() ? vs : nullptr, nv};
  put(dd.kv.dtype, in.pick(7));
  put(dd.kv.layout, in.pick(3));
  if (dd.kv.v_scale == nullptr) dd.kv.num_v_scale = in.pick(2);  // NULL with a count: must be refused
  put(dd.q_dtype, in.pick(6));
  dd.attn = {in.param(0.f), in.param(0.f), in.isize(-1, KVS_MAX_SEQUENCE_LENGTH)};
  kvs_batch_paged_decode_plan* dp = nullptr;
  code = kvs_batch_paged_decode_create(&dd, {KVS_DEVICE_CPU, 0}, &dp, err);
  check(code, err);
  kvs_batch_paged_decode_destroy(dp);
}

}  // namespace

KVSERVE_FUZZ_CASES(boundary, block_manager)

}  // namespace kvserve::fuzz
