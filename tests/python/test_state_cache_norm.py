"""Merge, KV-cache append, RMSNorm and GDN plans against numpy references."""

import numpy as np
import pytest

import kvserve as K
from conftest import poisoned
from reference import gated_delta_rule, merge, rmsnorm

F32 = K.DType.f32
TOL = dict(rtol=1e-4, atol=2e-5)


def test_merge_state_out_of_place_and_in_place(rng):
    tokens, heads, dim = 7, 3, 64
    desc = K.MergeStateDesc(num_heads=heads, head_dim=dim, dtype=F32)
    plan = K.MergeStatePlan.create(desc)
    v_a, v_b = (rng.standard_normal((tokens, heads, dim), np.float32) for _ in range(2))
    lse_a, lse_b = (rng.standard_normal((tokens, heads), np.float32) * 3 for _ in range(2))
    lse_b[0, 0] = -np.inf  # an empty state is the identity
    v_b[0, 0] = np.nan      # and its v is not read
    ref, ref_lse = merge(v_a, lse_a, v_b, lse_b)
    out, lse = poisoned(v_a.shape), poisoned(lse_a.shape)
    plan.run(v_a=v_a, lse_a=lse_a, v_b=v_b, lse_b=lse_b, v_out=out, lse_out=lse)
    np.testing.assert_allclose(out, ref, **TOL)
    np.testing.assert_allclose(lse, ref_lse, **TOL)
    plan.run(v_a=v_a, lse_a=lse_a, v_b=v_b, lse_b=lse_b, v_out=v_a, lse_out=lse_a)  # in place
    np.testing.assert_allclose(v_a, ref, **TOL)
    np.testing.assert_allclose(lse_a, ref_lse, **TOL)


def test_merge_states(rng):
    tokens, n, heads, dim = 5, 4, 2, 64
    plan = K.MergeStatesPlan.create(K.MergeStatesDesc(num_heads=heads, head_dim=dim, dtype=F32))
    v = rng.standard_normal((tokens, n, heads, dim), np.float32)
    lse = rng.standard_normal((tokens, n, heads), np.float32)
    lse[1, :, 0] = -np.inf
    ref, ref_lse = v[:, 0].astype(np.float64), lse[:, 0].astype(np.float64)
    for i in range(1, n):
        ref, ref_lse = merge(ref, ref_lse, v[:, i], lse[:, i])
    out, out_lse = poisoned((tokens, heads, dim)), poisoned((tokens, heads))
    plan.run(v=v, lse=lse, v_out=out, lse_out=out_lse)
    np.testing.assert_allclose(out, ref, **TOL)
    np.testing.assert_allclose(out_lse, ref_lse, **TOL)
    assert np.all(out[1, 0] == 0) and np.isneginf(out_lse[1, 0])


def pool_and_table(rng, page_size, heads, dim, lengths):
    counts = [-(-n // page_size) for n in lengths]
    num_pages = sum(counts) + 2
    indices = rng.permutation(num_pages)[: sum(counts)].astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    last = np.array([n - (c - 1) * page_size if c else 0 for n, c in zip(lengths, counts)], np.int32)
    k = rng.standard_normal((num_pages, page_size, heads, dim), np.float32)
    return k, k.copy() + 1, indptr, indices, last


def slot(indices, indptr, page_size, b, pos):
    return indices[indptr[b] + pos // page_size], pos % page_size


def test_paged_kv_append_decode_writes_the_last_slot_only(rng):
    page_size, heads, dim, lengths = 4, 2, 64, [5, 8, 0, 1]
    k_pages, v_pages, indptr, indices, last = pool_and_table(rng, page_size, heads, dim, lengths)
    before_k, before_v = k_pages.copy(), v_pages.copy()
    desc = K.PagedKvAppendDesc(kv=K.PagedKvDesc(page_size=page_size, num_pages=len(k_pages), num_kv_heads=heads,
                                                head_dim=dim, dtype=F32), dtype=F32, mode=K.AppendMode.decode)
    plan = K.PagedKvAppendPlan.create(desc)
    k, v = (rng.standard_normal((4, heads, dim), np.float32) for _ in range(2))
    plan.run(k=k, v=v, kv=K.PagedKv(k_pages=k_pages, v_pages=v_pages, indptr=indptr, indices=indices,
                                    last_page_len=last))
    for b, n in enumerate(lengths):
        if n == 0:
            continue
        p, s = slot(indices, indptr, page_size, b, n - 1)
        np.testing.assert_array_equal(k_pages[p, s], k[b])
        np.testing.assert_array_equal(v_pages[p, s], v[b])
        before_k[p, s], before_v[p, s] = k[b], v[b]
    np.testing.assert_array_equal(k_pages, before_k)  # nothing else changed
    np.testing.assert_array_equal(v_pages, before_v)


def test_paged_kv_append_ragged(rng):
    page_size, heads, dim, lengths = 3, 1, 64, [7, 4]
    k_pages, v_pages, indptr, indices, last = pool_and_table(rng, page_size, heads, dim, lengths)
    desc = K.PagedKvAppendDesc(kv=K.PagedKvDesc(page_size=page_size, num_pages=len(k_pages), num_kv_heads=heads,
                                                head_dim=dim, dtype=F32), dtype=F32, mode=K.AppendMode.ragged)
    plan = K.PagedKvAppendPlan.create(desc)
    batch_indices = np.array([0, 0, 1, 0, 1], np.int32)
    positions = np.array([0, 6, 3, 2, 0], np.int32)
    k, v = (rng.standard_normal((5, heads, dim), np.float32) for _ in range(2))
    plan.run(k=k, v=v, batch_indices=batch_indices, positions=positions,
             kv=dict(k_pages=k_pages, v_pages=v_pages, indptr=indptr, indices=indices, last_page_len=last))
    for i, (b, pos) in enumerate(zip(batch_indices, positions)):
        p, s = slot(indices, indptr, page_size, b, pos)
        np.testing.assert_array_equal(k_pages[p, s], k[i])
        np.testing.assert_array_equal(v_pages[p, s], v[i])


def test_paged_mla_append(rng):
    page_size, ckv_dim, kpe_dim, num_pages = 4, 32, 16, 5
    desc = K.PagedMlaDesc(page_size=page_size, num_pages=num_pages, ckv_dim=ckv_dim, kpe_dim=kpe_dim, dtype=F32)
    plan = K.PagedMlaAppendPlan.create(desc)
    ckv_pages = poisoned((num_pages, page_size, ckv_dim))
    kpe_pages = poisoned((num_pages, page_size, kpe_dim))
    indptr, indices, last = np.array([0, 2], np.int32), np.array([4, 1], np.int32), np.array([2], np.int32)
    ckv = rng.standard_normal((6, ckv_dim), np.float32)
    kpe = rng.standard_normal((6, kpe_dim), np.float32)
    positions = np.arange(6, dtype=np.int32)
    plan.run(ckv=ckv, kpe=kpe, batch_indices=np.zeros(6, np.int32), positions=positions,
             cache=K.PagedMlaCache(ckv_pages=ckv_pages, kpe_pages=kpe_pages, indptr=indptr, indices=indices,
                                   last_page_len=last))
    np.testing.assert_array_equal(ckv_pages[[4, 1]].reshape(-1, ckv_dim)[:6], ckv)
    np.testing.assert_array_equal(kpe_pages[[4, 1]].reshape(-1, kpe_dim)[:6], kpe)


def test_kv_cache_append(rng):
    batch, heads, length, dim = 3, 2, 10, 64
    plan = K.KvCacheAppendPlan.create(K.KvCacheAppendDesc(num_kv_heads=heads, head_dim=dim, dtype=F32))
    k_cache, v_cache = (rng.standard_normal((batch, heads, length, dim), np.float32) for _ in range(2))
    expect_k, expect_v = k_cache.copy(), v_cache.copy()
    k, v = (rng.standard_normal((3, heads, dim), np.float32) for _ in range(2))
    positions = np.array([9, 0, 4], np.int32)
    plan.run(k=k, v=v, positions=positions, k_cache=k_cache, v_cache=v_cache)
    for b in range(3):
        expect_k[b, :, positions[b]], expect_v[b, :, positions[b]] = k[b], v[b]
    np.testing.assert_array_equal(k_cache, expect_k)
    np.testing.assert_array_equal(v_cache, expect_v)


@pytest.mark.parametrize("offset,fused", [(0.0, False), (1.0, False), (0.0, True), (1.0, True)])
def test_rmsnorm_variants(rng, offset, fused):
    rows, hidden, eps = 9, 96, 1e-5
    plan = K.RmsNormPlan.create(K.RmsNormDesc(hidden_size=hidden, dtype=F32, eps=eps, weight_offset=offset,
                                              fused_add=fused))
    x = rng.standard_normal((rows, hidden), np.float32)
    w = rng.standard_normal(hidden).astype(np.float32)
    out = poisoned(x.shape)
    if fused:
        residual = rng.standard_normal((rows, hidden), np.float32)
        updated = x + residual
        plan.run(x=x, weight=w, residual=residual, out=out)
        np.testing.assert_array_equal(residual, updated)
        np.testing.assert_allclose(out, rmsnorm(updated, w, eps, offset), **TOL)
    else:
        plan.run(x=x, weight=w, out=out)
        np.testing.assert_allclose(out, rmsnorm(x, w, eps, offset), **TOL)


def test_qk_rmsnorm_on_strided_heads(rng):
    tokens, heads, dim = 4, 3, 64
    qkv = rng.standard_normal((tokens, 2 * heads, dim), np.float32)
    q = qkv[:, :heads]  # a view: token stride 2 * heads * dim
    w = rng.standard_normal(dim).astype(np.float32)
    plan = K.RmsNormPlan.create(K.RmsNormDesc(hidden_size=dim, dtype=F32, eps=1e-6))
    out = poisoned(q.shape)
    plan.run(x=q, weight=w, out=out)
    np.testing.assert_allclose(out, rmsnorm(q, w, 1e-6), **TOL)


@pytest.mark.parametrize("hqk,hv", [(2, 2), (1, 2), (2, 1)])
def test_gdn_prefill(rng, hqk, hv):
    dk, dv, cu = 16, 32, np.array([0, 5, 5, 12], np.int32)
    heads, tokens, batch = max(hqk, hv), 12, 3
    desc = K.GdnPrefillDesc(max_batch=4, max_tokens=64, num_qk_heads=hqk, num_v_heads=hv, head_dim_k=dk,
                            head_dim_v=dv, dtype=F32)
    plan = K.GdnPrefillPlan.create(desc)
    q = rng.standard_normal((tokens, hqk, dk), np.float32)
    k = rng.standard_normal((tokens, hqk, dk), np.float32)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.standard_normal((tokens, hv, dv), np.float32)
    alpha = rng.uniform(0.8, 1.0, (tokens, heads)).astype(np.float32)
    beta = rng.uniform(0.0, 1.0, (tokens, heads)).astype(np.float32)
    state0 = rng.standard_normal((batch, heads, dv, dk), np.float32)
    out, final = poisoned((tokens, heads, dv)), poisoned((batch, heads, dv, dk))
    plan.run(q=q, k=k, v=v, alpha=alpha, beta=beta, cu_seqlens=cu, initial_state=state0, out=out,
             final_state=final, workspace=K.workspace(plan))
    ref, ref_final = gated_delta_rule(q, k, v, alpha, beta, cu, 1 / np.sqrt(dk), state0)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(final, ref_final, rtol=1e-4, atol=1e-4)


def test_gdn_decode_steps_equal_prefill(rng):
    # Two sequences in slots 3 and 0 of a 4-slot pool, one padded row (-1):
    # four decode steps give the prefill's outputs and final states.
    hqk, hv, dk, dv, steps, slots = 1, 2, 16, 32, 4, 4
    heads = max(hqk, hv)
    prefill = K.GdnPrefillPlan.create(K.GdnPrefillDesc(max_batch=2, max_tokens=2 * steps, num_qk_heads=hqk,
                                                       num_v_heads=hv, head_dim_k=dk, head_dim_v=dv, dtype=F32))
    decode = K.GdnDecodePlan.create(K.GdnDecodeDesc(max_batch=3, num_state_slots=slots, num_qk_heads=hqk,
                                                    num_v_heads=hv, head_dim_k=dk, head_dim_v=dv, dtype=F32))
    tokens = 2 * steps
    q = rng.standard_normal((tokens, hqk, dk), np.float32)
    k = rng.standard_normal((tokens, hqk, dk), np.float32)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.standard_normal((tokens, hv, dv), np.float32)
    alpha = rng.uniform(0.8, 1.0, (tokens, heads)).astype(np.float32)
    beta = rng.uniform(0.0, 1.0, (tokens, heads)).astype(np.float32)
    state0 = rng.standard_normal((2, heads, dv, dk), np.float32)
    cu = np.array([0, steps, tokens], np.int32)
    ref_out, ref_final = poisoned((tokens, heads, dv)), poisoned((2, heads, dv, dk))
    prefill.run(q=q, k=k, v=v, alpha=alpha, beta=beta, cu_seqlens=cu, initial_state=state0, out=ref_out,
                final_state=ref_final, workspace=K.workspace(prefill))

    pool = rng.standard_normal((slots, heads, dv, dk), np.float32)
    spare = pool[[1, 2]].copy()
    pool[3], pool[0] = state0[0], state0[1]
    index = np.array([3, 0, -1], np.int32)
    pad = lambda x: np.concatenate([x, np.ones_like(x[:1])])  # the padded row's inputs
    for t in range(steps):
        rows = [t, steps + t]
        out = poisoned((3, heads, dv))
        decode.run(q=pad(q[rows]), k=pad(k[rows]), v=pad(v[rows]), alpha=pad(alpha[rows]), beta=pad(beta[rows]),
                   state_indices=index, state=pool, out=out)
        np.testing.assert_array_equal(out[:2], ref_out[rows])
        np.testing.assert_array_equal(out[2], 0)
    np.testing.assert_array_equal(pool[3], ref_final[0])
    np.testing.assert_array_equal(pool[0], ref_final[1])
    np.testing.assert_array_equal(pool[[1, 2]], spare)
