"""Every attention plan through the Python API against the numpy reference."""

import numpy as np
import pytest

import kvserve as K
from conftest import poisoned
from reference import attention, gather_pages

F32 = K.DType.f32
TOL = dict(rtol=1e-4, atol=2e-5)


def paged_cache(rng, lengths, page_size, heads, dim, layout="NHD", spare=3):
    """Random pools and a shuffled page table for requests of these KV lengths."""
    counts = [-(-n // page_size) for n in lengths]
    num_pages = sum(counts) + spare
    order = rng.permutation(num_pages).astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    indices = order[: indptr[-1]].copy()
    last = np.array([n - (c - 1) * page_size if c else 0 for n, c in zip(lengths, counts)], np.int32)
    shape = (num_pages, page_size, heads, dim) if layout == "NHD" else (num_pages, heads, page_size, dim)
    k = rng.standard_normal(shape, np.float32)
    v = rng.standard_normal(shape, np.float32)
    return dict(k_pages=k, v_pages=v, indptr=indptr, indices=indices, last_page_len=last), num_pages


def kv_desc(num_pages, page_size, heads, dim, layout="NHD"):
    return K.PagedKvDesc(page_size=page_size, num_pages=num_pages, num_kv_heads=heads, head_dim=dim, dtype=F32,
                         layout=getattr(K.KvLayout, layout))


def request_kv(kv, b, layout):
    pages = kv["indices"][kv["indptr"][b]:kv["indptr"][b + 1]]
    n = 0 if len(pages) == 0 else (len(pages) - 1) * kv["k_pages"].shape[1 if layout == "NHD" else 2] + \
        kv["last_page_len"][b]
    return gather_pages(kv["k_pages"], pages, n, layout), gather_pages(kv["v_pages"], pages, n, layout)


def test_batch_paged_mla_decode_is_attention_over_the_latent_rows(rng):
    """Absorbed MLA: keys [ckv | kpe], values ckv, every head over the one latent KV."""
    lengths, page_size, heads, ckv, kpe, scale = [9, 0, 1, 40], 4, 8, 64, 16, 0.1
    cache, num_pages = paged_cache(rng, lengths, page_size, 1, ckv)
    kpe_pages = rng.standard_normal((num_pages, page_size, kpe), np.float32)
    mla = K.PagedMlaDesc(page_size=page_size, num_pages=num_pages, ckv_dim=ckv, kpe_dim=kpe, dtype=F32)
    plan = K.BatchPagedMlaDecodePlan.create(
        K.BatchPagedMlaDecodeDesc(max_batch=4, num_heads=heads, cache=mla, sm_scale=scale), "cpu")
    ws = K.workspace(plan)
    plan.prepare(indptr=cache["indptr"], last_page_len=cache["last_page_len"], workspace=ws)
    q_nope = rng.standard_normal((len(lengths), heads, ckv), np.float32)
    q_pe = rng.standard_normal((len(lengths), heads, kpe), np.float32)
    out, lse = poisoned(q_nope.shape), poisoned(q_nope.shape[:2])
    ckv_pages = cache["k_pages"][:, :, 0]
    plan.run(q_nope=q_nope, q_pe=q_pe, out=out, lse=lse, workspace=ws,
             cache=dict(ckv_pages=ckv_pages, kpe_pages=kpe_pages, indptr=cache["indptr"],
                        indices=cache["indices"], last_page_len=cache["last_page_len"]))
    for b, n in enumerate(lengths):
        pages = cache["indices"][cache["indptr"][b]:cache["indptr"][b + 1]]
        c = gather_pages(ckv_pages[:, :, None], pages, n)
        keys = np.concatenate([c, gather_pages(kpe_pages[:, :, None], pages, n)], axis=2)
        q = np.concatenate([q_nope[b:b + 1], q_pe[b:b + 1]], axis=2)
        ref, ref_lse = attention(q, keys, c, sm_scale=scale)
        np.testing.assert_allclose(out[b], ref[0], **TOL)
        np.testing.assert_allclose(lse[b], ref_lse[0], **TOL)


@pytest.mark.parametrize("layout", ["NHD", "HND"])
@pytest.mark.parametrize("group,dim,page_size,cap,window", [(1, 64, 16, 0.0, -1), (4, 128, 5, 30.0, -1),
                                                          (2, 64, 1, 0.0, 7)])
def test_batch_paged_decode(rng, layout, group, dim, page_size, cap, window):
    lengths = [1, 37, 0, 16, 90]
    hk = 2
    kv, num_pages = paged_cache(rng, lengths, page_size, hk, dim, layout)
    attn = K.AttentionParams(logits_soft_cap=cap, window_left=window)
    desc = K.BatchPagedDecodeDesc(max_batch=8, num_qo_heads=hk * group, q_dtype=F32,
                                  kv=kv_desc(num_pages, page_size, hk, dim, layout), attn=attn)
    plan = K.BatchPagedDecodePlan.create(desc, "cpu")
    ws = K.workspace(plan)
    plan.prepare(indptr=kv["indptr"], last_page_len=kv["last_page_len"], workspace=ws)
    q = rng.standard_normal((len(lengths), hk * group, dim), np.float32)
    out, lse = poisoned(q.shape), poisoned(q.shape[:2])
    plan.run(q=q, kv=K.PagedKv(**kv), out=out, lse=lse, workspace=ws)
    for b in range(len(lengths)):
        k, v = request_kv(kv, b, layout)
        ref, ref_lse = attention(q[b:b + 1], k, v, soft_cap=cap, window_left=window)
        np.testing.assert_allclose(out[b], ref[0], **TOL)
        np.testing.assert_allclose(lse[b], ref_lse[0], **TOL)


def test_single_decode(rng):
    batch, hq, hk, length, dim = 3, 8, 2, 40, 64
    desc = K.SingleDecodeDesc(max_batch=4, num_qo_heads=hq, num_kv_heads=hk, head_dim=dim, dtype=F32,
                              attn=K.AttentionParams(sm_scale=0.1))
    plan = K.SingleDecodePlan.create(desc)
    q = rng.standard_normal((batch, hq, dim), np.float32)
    k = rng.standard_normal((batch, hk, length, dim), np.float32)
    v = rng.standard_normal((batch, hk, length, dim), np.float32)
    kv_len = np.array([40, 1, 17], np.int32)
    out, lse = poisoned(q.shape), poisoned((batch, hq))
    plan.run(q=q, k=k, v=v, kv_len=kv_len, out=out, lse=lse, workspace=K.workspace(plan))
    for b in range(batch):
        n = kv_len[b]
        ref, ref_lse = attention(q[b:b + 1], k[b, :, :n].transpose(1, 0, 2), v[b, :, :n].transpose(1, 0, 2),
                                 sm_scale=0.1)
        np.testing.assert_allclose(out[b], ref[0], **TOL)
        np.testing.assert_allclose(lse[b], ref_lse[0], **TOL)


@pytest.mark.parametrize("layout", ["NHD", "HND"])
@pytest.mark.parametrize("causal,lq,lkv,dim_v", [(True, 13, 29, 64), (False, 20, 7, 64), (True, 9, 5, 32)])
def test_single_prefill(rng, layout, causal, lq, lkv, dim_v):
    hq, hk, dim = 4, 2, 64
    desc = K.SinglePrefillDesc(num_qo_heads=hq, num_kv_heads=hk, head_dim=dim, head_dim_v=dim_v, dtype=F32,
                               layout=getattr(K.KvLayout, layout), causal=causal)
    plan = K.SinglePrefillPlan.create(desc)
    q = rng.standard_normal((lq, hq, dim), np.float32)
    k = rng.standard_normal((lkv, hk, dim), np.float32)
    v = rng.standard_normal((lkv, hk, dim_v), np.float32)
    out, lse = poisoned((lq, hq, dim_v)), poisoned((lq, hq))
    kk, vv = (k, v) if layout == "NHD" else (np.ascontiguousarray(k.transpose(1, 0, 2)),
                                             np.ascontiguousarray(v.transpose(1, 0, 2)))
    plan.run(q=q, k=kk, v=vv, out=out, lse=lse, workspace=K.workspace(plan))
    ref, ref_lse = attention(q, k, v, causal=causal)
    np.testing.assert_allclose(out, ref, **TOL)
    np.testing.assert_allclose(lse, ref_lse, **TOL)


def test_batch_ragged_prefill(rng):
    hq, hk, dim = 6, 3, 64
    q_lens, kv_lens = [5, 0, 12, 1], [9, 4, 12, 30]
    qo_indptr = np.concatenate([[0], np.cumsum(q_lens)]).astype(np.int32)
    kv_indptr = np.concatenate([[0], np.cumsum(kv_lens)]).astype(np.int32)
    desc = K.BatchRaggedPrefillDesc(max_batch=4, num_qo_heads=hq, num_kv_heads=hk, head_dim=dim, dtype=F32,
                                    causal=True, attn=K.AttentionParams(window_left=6))
    plan = K.BatchRaggedPrefillPlan.create(desc)
    ws = K.workspace(plan)
    plan.prepare(qo_indptr=qo_indptr, kv_indptr=kv_indptr, workspace=ws)
    q = rng.standard_normal((qo_indptr[-1], hq, dim), np.float32)
    k = rng.standard_normal((kv_indptr[-1], hk, dim), np.float32)
    v = rng.standard_normal((kv_indptr[-1], hk, dim), np.float32)
    out, lse = poisoned(q.shape), poisoned(q.shape[:2])
    plan.run(q=q, k=k, v=v, qo_indptr=qo_indptr, kv_indptr=kv_indptr, out=out, lse=lse, workspace=ws)
    for b in range(4):
        qs, ks = slice(qo_indptr[b], qo_indptr[b + 1]), slice(kv_indptr[b], kv_indptr[b + 1])
        ref, ref_lse = attention(q[qs], k[ks], v[ks], causal=True, window_left=6)
        np.testing.assert_allclose(out[qs], ref, **TOL)
        np.testing.assert_allclose(lse[qs], ref_lse, **TOL)


@pytest.mark.parametrize("layout", ["NHD", "HND"])
def test_batch_paged_prefill(rng, layout):
    hq, hk, dim, page_size = 4, 1, 64, 8
    kv_lens, q_lens = [20, 3, 33], [20, 1, 7]
    kv, num_pages = paged_cache(rng, kv_lens, page_size, hk, dim, layout)
    qo_indptr = np.concatenate([[0], np.cumsum(q_lens)]).astype(np.int32)
    desc = K.BatchPagedPrefillDesc(max_batch=3, num_qo_heads=hq, q_dtype=F32, causal=True,
                                   kv=kv_desc(num_pages, page_size, hk, dim, layout))
    plan = K.BatchPagedPrefillPlan.create(desc)
    ws = K.workspace(plan)
    plan.prepare(qo_indptr=qo_indptr, kv=dict(indptr=kv["indptr"], last_page_len=kv["last_page_len"]),
                 workspace=ws)
    q = rng.standard_normal((qo_indptr[-1], hq, dim), np.float32)
    out, lse = poisoned(q.shape), poisoned(q.shape[:2])
    plan.run(q=q, qo_indptr=qo_indptr, kv=kv, out=out, lse=lse, workspace=ws)
    for b in range(3):
        k, v = request_kv(kv, b, layout)
        qs = slice(qo_indptr[b], qo_indptr[b + 1])
        ref, ref_lse = attention(q[qs], k, v, causal=True)
        np.testing.assert_allclose(out[qs], ref, **TOL)
        np.testing.assert_allclose(lse[qs], ref_lse, **TOL)


def test_cascade_attention_equals_decode_over_prefix_and_suffix(rng):
    hq, hk, dim, page_size = 4, 2, 64, 4
    # Two groups: a shared prefix of 3 pages for requests 0-2, none for request 3.
    prefix, num_prefix_pages = paged_cache(rng, [12, 0], page_size, hk, dim, spare=0)
    suffix_lens = [1, 6, 0, 9]
    counts = [-(-n // page_size) for n in suffix_lens]
    pool_k = np.concatenate([prefix["k_pages"], rng.standard_normal((sum(counts), page_size, hk, dim),
                                                                    np.float32)])
    pool_v = np.concatenate([prefix["v_pages"], rng.standard_normal((sum(counts), page_size, hk, dim),
                                                                    np.float32)])
    suffix_indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    suffix_indices = (num_prefix_pages + np.arange(sum(counts))).astype(np.int32)
    suffix_last = np.array([n - (c - 1) * page_size if c else 0 for n, c in zip(suffix_lens, counts)], np.int32)
    group_indptr = np.array([0, 3, 4], np.int32)
    desc = K.CascadeAttentionDesc(max_batch=4, max_groups=2, num_qo_heads=hq, q_dtype=F32,
                                  kv=kv_desc(len(pool_k), page_size, hk, dim))
    plan = K.CascadeAttentionPlan.create(desc)
    ws = K.workspace(plan)
    plan.prepare(group_indptr=group_indptr,
                 prefix=dict(indptr=prefix["indptr"], last_page_len=prefix["last_page_len"]),
                 suffix=dict(indptr=suffix_indptr, last_page_len=suffix_last), workspace=ws)
    q = rng.standard_normal((4, hq, dim), np.float32)
    out, lse = poisoned(q.shape), poisoned(q.shape[:2])
    pools = dict(k_pages=pool_k, v_pages=pool_v)
    plan.run(q=q, group_indptr=group_indptr,
             prefix=dict(pools, indptr=prefix["indptr"], indices=prefix["indices"],
                         last_page_len=prefix["last_page_len"]),
             suffix=dict(pools, indptr=suffix_indptr, indices=suffix_indices, last_page_len=suffix_last),
             out=out, lse=lse, workspace=ws)
    prefix_keys = gather_pages(pool_k, prefix["indices"], 12), gather_pages(pool_v, prefix["indices"], 12)
    for b in range(4):
        pages = suffix_indices[suffix_indptr[b]:suffix_indptr[b + 1]]
        ks, vs = gather_pages(pool_k, pages, suffix_lens[b]), gather_pages(pool_v, pages, suffix_lens[b])
        if b < 3:
            ks, vs = np.concatenate([prefix_keys[0], ks]), np.concatenate([prefix_keys[1], vs])
        ref, ref_lse = attention(q[b:b + 1], ks, vs)
        np.testing.assert_allclose(out[b], ref[0], **TOL)
        np.testing.assert_allclose(lse[b], ref_lse[0], **TOL)


def test_f16_decode_matches_the_f32_reference_within_half_precision(rng):
    hk, dim, page_size = 2, 64, 16
    kv, num_pages = paged_cache(rng, [50, 3], page_size, hk, dim)
    kv16 = dict(kv, k_pages=kv["k_pages"].astype(np.float16), v_pages=kv["v_pages"].astype(np.float16))
    pkv = K.PagedKvDesc(page_size=page_size, num_pages=num_pages, num_kv_heads=hk, head_dim=dim, dtype=K.DType.f16)
    plan = K.BatchPagedDecodePlan.create(K.BatchPagedDecodeDesc(max_batch=2, num_qo_heads=hk, q_dtype=K.DType.f16,
                                                                kv=pkv))
    ws = K.workspace(plan)
    plan.prepare(K.PagedKv(**kv16), workspace=ws)  # any object with indptr / last_page_len attributes
    q = rng.standard_normal((2, hk, dim)).astype(np.float16)
    out = poisoned(q.shape, np.float16)
    plan.run(q=q, kv=kv16, out=out, workspace=ws)
    for b in range(2):
        k, v = request_kv(kv16, b, "NHD")
        ref, _ = attention(q[b:b + 1], k, v)
        np.testing.assert_allclose(out[b], ref[0], rtol=2e-3, atol=2e-3)


def test_validate_page_table_names_the_bad_entry(rng):
    kv, num_pages = paged_cache(rng, [5, 9], 4, 1, 64)
    desc = kv_desc(num_pages, 4, 1, 64)
    K.validate_page_table(desc, indptr=kv["indptr"], indices=kv["indices"], last_page_len=kv["last_page_len"])
    bad = kv["indices"].copy()
    bad[2] = num_pages + 5
    with pytest.raises(K.InvalidProblem, match=str(num_pages + 5)) as e:
        K.validate_page_table(desc, indptr=kv["indptr"], indices=bad, last_page_len=kv["last_page_len"])
    assert "indices" in str(e.value)
