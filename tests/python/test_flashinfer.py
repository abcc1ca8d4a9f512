"""kvserve.flashinfer against plain torch references, the way FlashInfer
tests itself: softmax attention, merge formulas, sorted-prefix sampling
distributions; over head dims, GQA ratios, page sizes, layouts, causal,
soft-cap, window and return_lse. CPU tensors here; CUDA too where present."""

import math

import pytest

torch = pytest.importorskip("torch")
import kvserve.flashinfer as flashinfer  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# Tolerances from the dtype: f32 on the CPU, f16/bf16 on the GPU.
DTYPES = {"cpu": torch.float32, "cuda": torch.float16}


def tol(dtype):
    return dict(rtol=1e-4, atol=2e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)


@pytest.fixture
def gen(request):
    seed = torch.randint(0, 2**31, (1,)).item()
    print(f"torch seed {seed}")
    return torch.Generator().manual_seed(seed)


def randn(gen, *shape, dtype=torch.float32, device="cpu"):
    return torch.randn(*shape, generator=gen).to(dtype=dtype, device=device)


def ref_attention(q, k, v, causal=False, sm_scale=None, soft_cap=0.0, window_left=-1):
    """q [Lq, Hq, D], k/v [Lkv, Hk, D] -> out [Lq, Hq, Dv], lse (base 2) [Lq, Hq]."""
    q, k, v = q.double(), k.double(), v.double()
    lq, hq, d = q.shape
    lkv, hk = k.shape[:2]
    k = k.repeat_interleave(hq // hk, dim=1)
    v = v.repeat_interleave(hq // hk, dim=1)
    s = torch.einsum("qhd,khd->hqk", q, k) * (sm_scale if sm_scale is not None else d ** -0.5)
    if soft_cap > 0:
        s = soft_cap * torch.tanh(s / soft_cap)
    pos = torch.arange(lq)[:, None] + lkv - lq
    j = torch.arange(lkv)[None, :]
    visible = torch.ones(lq, lkv, dtype=torch.bool)
    if causal:
        visible &= j <= pos
    if window_left >= 0:
        visible &= j >= pos - window_left
    s = s.masked_fill(~visible.to(s.device), float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.nan_to_num(torch.exp(s - lse[..., None]))
    return torch.einsum("hqk,khd->qhd", p, v), (lse / math.log(2)).transpose(0, 1)


def paged(gen, lengths, page_size, hk, d, layout, dtype, device):
    counts = [-(-n // page_size) for n in lengths]
    num_pages = sum(counts) + 2
    perm = torch.randperm(num_pages, generator=gen).to(torch.int32)
    indptr = torch.tensor([0] + list(torch.tensor(counts).cumsum(0)), dtype=torch.int32)
    indices = perm[: int(indptr[-1])]
    last = torch.tensor([n - (c - 1) * page_size if c else 0 for n, c in zip(lengths, counts)], dtype=torch.int32)
    shape = (num_pages, 2, page_size, hk, d) if layout == "NHD" else (num_pages, 2, hk, page_size, d)
    cache = randn(gen, *shape, dtype=dtype, device=device)
    return cache, indptr.to(device), indices.to(device), last.to(device)


def gather(cache, indptr, indices, last, b, layout):
    pages = indices[indptr[b]:indptr[b + 1]].long()
    k, v = cache[pages, 0], cache[pages, 1]
    if layout == "HND":
        k, v = k.transpose(1, 2), v.transpose(1, 2)
    page_size = k.shape[1]
    n = 0 if len(pages) == 0 else (len(pages) - 1) * page_size + int(last[b])
    return k.reshape(-1, *k.shape[2:])[:n], v.reshape(-1, *v.shape[2:])[:n]


def workspace(device):
    return torch.empty(32 << 20, dtype=torch.uint8, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["NHD", "HND"])
@pytest.mark.parametrize("head_dim,group,page_size,cap,window", [(64, 1, 16, None, -1), (128, 4, 1, 30.0, -1),
                                                                 (128, 8, 5, None, 9), (256, 2, 16, None, -1)])
def test_batch_decode(gen, device, layout, head_dim, group, page_size, cap, window):
    dtype = DTYPES[device]
    lengths, hk = [7, 1, 40, 33], 2
    cache, indptr, indices, last = paged(gen, lengths, page_size, hk, head_dim, layout, dtype, device)
    w = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace(device), layout)
    w.plan(indptr, indices, last, hk * group, hk, head_dim, page_size, logits_soft_cap=cap, window_left=window,
           q_data_type=dtype)
    q = randn(gen, len(lengths), hk * group, head_dim, dtype=dtype, device=device)
    out, lse = w.run(q, cache, return_lse=True)
    assert out.dtype == dtype and lse.dtype == torch.float32
    for b in range(len(lengths)):
        k, v = gather(cache, indptr, indices, last, b, layout)
        ref, ref_lse = ref_attention(q[b:b + 1], k, v, soft_cap=cap or 0.0, window_left=window)
        torch.testing.assert_close(out[b].double(), ref[0], **tol(dtype))
        torch.testing.assert_close(lse[b].double(), ref_lse[0], **tol(dtype))
    # A separate (k, v) tuple is the same cache; the deprecated spellings are the same call.
    torch.testing.assert_close(w.run(q, (cache[:, 0], cache[:, 1])), out, rtol=0, atol=0)
    torch.testing.assert_close(w.forward_return_lse(q, cache)[1], lse, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["NHD", "HND"])
@pytest.mark.parametrize("causal", [True, False])
def test_batch_prefill_paged(gen, device, layout, causal):
    dtype, hk, group, d, page_size = DTYPES[device], 2, 3, 64, 4
    kv_lens = [9, 16, 3]  # q_lens 9, 4, 1 (qo_indptr below)
    cache, indptr, indices, last = paged(gen, kv_lens, page_size, hk, d, layout, dtype, device)
    qo_indptr = torch.tensor([0, 9, 13, 14], dtype=torch.int32, device=device)
    w = flashinfer.BatchPrefillWithPagedKVCacheWrapper(workspace(device), layout)
    w.plan(qo_indptr, indptr, indices, last, hk * group, hk, d, page_size, causal=causal, q_data_type=dtype)
    q = randn(gen, 14, hk * group, d, dtype=dtype, device=device)
    out, lse = w.run(q, cache, return_lse=True)
    for b in range(3):
        k, v = gather(cache, indptr, indices, last, b, layout)
        rows = slice(int(qo_indptr[b]), int(qo_indptr[b + 1]))
        ref, ref_lse = ref_attention(q[rows], k, v, causal=causal)
        torch.testing.assert_close(out[rows].double(), ref, **tol(dtype))
        torch.testing.assert_close(lse[rows].double(), ref_lse, **tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("causal,head_dim_vo", [(True, None), (False, 32)])
def test_batch_prefill_ragged(gen, device, causal, head_dim_vo):
    dtype, hq, hk, d = DTYPES[device], 4, 4, 64
    qo_indptr = torch.tensor([0, 5, 6, 16], dtype=torch.int32)
    kv_indptr = torch.tensor([0, 5, 20, 30], dtype=torch.int32)
    dv = head_dim_vo or d
    w = flashinfer.BatchPrefillWithRaggedKVCacheWrapper(workspace(device))
    w.plan(qo_indptr.to(device), kv_indptr.to(device), hq, hk, d, head_dim_vo=head_dim_vo, causal=causal,
           q_data_type=dtype)
    q = randn(gen, 16, hq, d, dtype=dtype, device=device)
    k = randn(gen, 30, hk, d, dtype=dtype, device=device)
    v = randn(gen, 30, hk, dv, dtype=dtype, device=device)
    out = w.run(q, k, v)
    for b in range(3):
        qs, ks = slice(int(qo_indptr[b]), int(qo_indptr[b + 1])), slice(int(kv_indptr[b]), int(kv_indptr[b + 1]))
        ref, _ = ref_attention(q[qs], k[ks], v[ks], causal=causal)
        torch.testing.assert_close(out[qs].double(), ref, **tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_multi_level_cascade_equals_attention_over_all_levels(gen, device):
    dtype, hq, hk, d, page_size = DTYPES[device], 4, 2, 64, 4
    num_pages = 12
    cache = randn(gen, num_pages, 2, page_size, hk, d, dtype=dtype, device=device)
    i32 = dict(dtype=torch.int32, device=device)
    # Level 0: pages 0-1 (8 tokens) shared by all 3 requests; level 1: each request's own pages.
    qo = [torch.tensor([0, 3], **i32), torch.tensor([0, 1, 2, 3], **i32)]
    kv_indptr = [torch.tensor([0, 2], **i32), torch.tensor([0, 1, 3, 4], **i32)]
    kv_indices = [torch.tensor([0, 1], **i32), torch.tensor([5, 7, 2, 9], **i32)]
    kv_last = [torch.tensor([4], **i32), torch.tensor([3, 1, 4], **i32)]
    w = flashinfer.MultiLevelCascadeAttentionWrapper(2, workspace(device))
    w.plan(qo, kv_indptr, kv_indices, kv_last, hq, hk, d, page_size, causal=True, q_data_type=dtype)
    q = randn(gen, 3, hq, d, dtype=dtype, device=device)
    out = w.run(q, cache)
    shared = gather(cache, kv_indptr[0], kv_indices[0], kv_last[0], 0, "NHD")
    for b in range(3):
        own = gather(cache, kv_indptr[1], kv_indices[1], kv_last[1], b, "NHD")
        ref, _ = ref_attention(q[b:b + 1], torch.cat([shared[0], own[0]]), torch.cat([shared[1], own[1]]))
        torch.testing.assert_close(out[b].double(), ref[0], **tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["NHD", "HND"])
def test_single_decode_and_prefill(gen, device, layout):
    dtype, hq, hk, d, n = DTYPES[device], 8, 2, 128, 37
    k = randn(gen, n, hk, d, dtype=dtype, device=device)
    v = randn(gen, n, hk, d, dtype=dtype, device=device)
    kk, vv = (k, v) if layout == "NHD" else (k.transpose(0, 1).contiguous(), v.transpose(0, 1).contiguous())
    q = randn(gen, hq, d, dtype=dtype, device=device)
    out = flashinfer.single_decode_with_kv_cache(q, kk, vv, kv_layout=layout, logits_soft_cap=20.0)
    ref, _ = ref_attention(q[None], k, v, soft_cap=20.0)
    torch.testing.assert_close(out.double(), ref[0], **tol(dtype))
    qp = randn(gen, 11, hq, d, dtype=dtype, device=device)
    out, lse = flashinfer.single_prefill_with_kv_cache(qp, kk, vv, causal=True, kv_layout=layout, window_left=5,
                                                       return_lse=True)
    ref, ref_lse = ref_attention(qp, k, v, causal=True, window_left=5)
    torch.testing.assert_close(out.double(), ref, **tol(dtype))
    torch.testing.assert_close(lse.double(), ref_lse, **tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_merge_state_formulas(gen, device):
    dtype, n, h, d = DTYPES[device], 9, 4, 64
    va, vb = randn(gen, n, h, d, dtype=dtype, device=device), randn(gen, n, h, d, dtype=dtype, device=device)
    sa, sb = randn(gen, n, h, device=device) * 4, randn(gen, n, h, device=device) * 4
    v, s = flashinfer.merge_state(va, sa, vb, sb)
    # Base-2 LSEs: weights 2^s.
    m = torch.maximum(sa, sb).double()
    wa, wb = torch.exp2(sa.double() - m), torch.exp2(sb.double() - m)
    ref_v = (wa[..., None] * va.double() + wb[..., None] * vb.double()) / (wa + wb)[..., None]
    torch.testing.assert_close(v.double(), ref_v, **tol(dtype))
    torch.testing.assert_close(s.double(), m + torch.log2(wa + wb), **tol(torch.float32))
    flashinfer.merge_state_in_place(va, sa, vb, sb)
    torch.testing.assert_close(va, v, rtol=0, atol=0)
    stack_v = torch.stack([va, vb], dim=1)
    stack_s = torch.stack([sa, sb], dim=1)
    mv, ms = flashinfer.merge_states(stack_v, stack_s)
    ref_v2 = (torch.exp2(stack_s.double() - ms.double()[:, None])[..., None] * stack_v.double()).sum(1)
    torch.testing.assert_close(mv.double(), ref_v2, **tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_append_paged_kv_cache_then_decode_reads_it(gen, device):
    dtype, hk, d, page_size = DTYPES[device], 2, 64, 4
    seq_lens = torch.tensor([5, 2], dtype=torch.int32, device=device)
    kv_indptr = torch.tensor([0, 2, 3], dtype=torch.int32, device=device)
    kv_indices = torch.tensor([3, 0, 1], dtype=torch.int32, device=device)
    kv_last = torch.tensor([1, 2], dtype=torch.int32, device=device)
    torch.testing.assert_close(flashinfer.get_seq_lens(kv_indptr, kv_last, page_size), seq_lens)
    append_indptr = torch.tensor([0, 5, 7], dtype=torch.int32, device=device)
    batch, pos = flashinfer.get_batch_indices_positions(append_indptr, seq_lens, 7)
    assert batch.tolist() == [0, 0, 0, 0, 0, 1, 1] and pos.tolist() == [0, 1, 2, 3, 4, 0, 1]
    k_cache = torch.full((4, page_size, hk, d), float("nan"), dtype=dtype, device=device)
    v_cache = k_cache.clone()
    k, v = randn(gen, 7, hk, d, dtype=dtype, device=device), randn(gen, 7, hk, d, dtype=dtype, device=device)
    flashinfer.append_paged_kv_cache(k, v, batch, pos, (k_cache, v_cache), kv_indices, kv_indptr, kv_last)
    assert torch.equal(k_cache[3].reshape(-1, hk, d), k[:4]) and torch.equal(k_cache[0, 0], k[4])
    assert torch.equal(v_cache[1, :2], v[5:])


@pytest.mark.parametrize("device", DEVICES)
def test_append_paged_mla_kv_cache(gen, device):
    dtype = DTYPES[device]
    ckv_cache = torch.zeros(3, 2, 32, dtype=dtype, device=device)
    kpe_cache = torch.zeros(3, 2, 16, dtype=dtype, device=device)
    ckv, kpe = randn(gen, 3, 32, dtype=dtype, device=device), randn(gen, 3, 16, dtype=dtype, device=device)
    i32 = dict(dtype=torch.int32, device=device)
    flashinfer.append_paged_mla_kv_cache(ckv, kpe, torch.zeros(3, **i32), torch.arange(3, **i32), ckv_cache,
                                         kpe_cache, torch.tensor([2, 0], **i32), torch.tensor([0, 2], **i32),
                                         torch.tensor([1], **i32))
    assert torch.equal(ckv_cache[2], ckv[:2]) and torch.equal(kpe_cache[0, 0], kpe[2])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("page_size", [1, 16])
def test_batch_mla_decode(gen, device, page_size):
    """The absorbed MLA decode: attention with one KV head, keys [ckv | kpe],
    values ckv; kv_len_arr in FlashInfer's form; empty and one-token requests."""
    dtype, heads, ckv_dim, kpe_dim, sm_scale = DTYPES[device], 16, 512, 64, 192 ** -0.5
    lengths = [37, 0, 1, 100]
    counts = [-(-n // page_size) for n in lengths]
    num_pages = sum(counts) + 3
    i32 = dict(dtype=torch.int32, device=device)
    indptr = torch.tensor([0] + list(torch.tensor(counts).cumsum(0)), **i32)
    indices = torch.randperm(num_pages, generator=gen).to(**i32)[: int(indptr[-1])]
    ckv_cache = randn(gen, num_pages, page_size, ckv_dim, dtype=dtype, device=device)
    kpe_cache = randn(gen, num_pages, page_size, kpe_dim, dtype=dtype, device=device)
    q_nope = randn(gen, len(lengths), heads, ckv_dim, dtype=dtype, device=device)
    q_pe = randn(gen, len(lengths), heads, kpe_dim, dtype=dtype, device=device)
    w = flashinfer.mla.BatchMLAPagedAttentionWrapper(workspace(device))
    w.plan(torch.arange(len(lengths) + 1, **i32), indptr, indices, torch.tensor(lengths, **i32), heads, ckv_dim,
           kpe_dim, page_size, False, sm_scale, dtype, dtype)
    out, lse = w.run(q_nope, q_pe, ckv_cache, kpe_cache, return_lse=True)
    for b, n in enumerate(lengths):
        pages = indices[indptr[b]:indptr[b + 1]].long()
        c = ckv_cache[pages].reshape(-1, ckv_dim)[:n]
        k = torch.cat([c, kpe_cache[pages].reshape(-1, kpe_dim)[:n]], -1)[:, None]
        q = torch.cat([q_nope[b], q_pe[b]], -1)[None]
        ref, ref_lse = ref_attention(q, k, c[:, None], sm_scale=sm_scale)
        torch.testing.assert_close(out[b].double(), ref[0], **tol(dtype))
        if n:
            torch.testing.assert_close(lse[b].double(), ref_lse[0], **tol(dtype))
    with pytest.raises(NotImplementedError, match="qo_indptr"):
        w.plan(torch.tensor([0, 2, 2, 3, 4], **i32), indptr, indices, torch.tensor(lengths, **i32), heads,
               ckv_dim, kpe_dim, page_size, True, sm_scale, dtype, dtype)
    with pytest.raises(ValueError, match="kv_len_arr"):
        w.plan(torch.arange(len(lengths) + 1, **i32), indptr, indices, torch.tensor([37, 0, 1, 100 + page_size], **i32),
               heads, ckv_dim, kpe_dim, page_size, False, sm_scale, dtype, dtype)


def sorted_prefix_distribution(p, top_k=None, top_p=None, min_p=None):
    """The truncated, renormalised distribution by sorting (FlashInfer's test reference)."""
    order = torch.argsort(-p, stable=True)
    keep = torch.zeros_like(p, dtype=torch.bool)
    if top_k is not None:
        keep[order[:top_k]] = True
    elif top_p is not None:
        cum = torch.cumsum(p[order], 0)
        keep[order[: int((cum < top_p * p.sum() * (1 - 1e-7)).sum()) + 1]] = True
    elif min_p is not None:
        keep = p >= min_p * p.max()
    else:
        keep[:] = True
    q = torch.where(keep, p, torch.zeros_like(p))
    return q / q.sum()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,kw", [("sampling_from_probs", {}), ("top_k_sampling_from_probs", dict(top_k=4)),
                                     ("top_p_sampling_from_probs", dict(top_p=0.5)),
                                     ("min_p_sampling_from_probs", dict(min_p=0.2))])
def test_sampling_distributions(gen, device, name, kw):
    vocab, rows = 11, 50000
    p = torch.distributions.Dirichlet(torch.full((vocab,), 0.8)).sample().float()
    probs = p.repeat(rows, 1).to(device)
    samples = getattr(flashinfer, name)(probs, *kw.values(), seed=int(torch.randint(0, 2**31, (1,), generator=gen)))
    assert samples.dtype == torch.int32 and samples.shape == (rows,)
    freq = torch.bincount(samples.long().cpu(), minlength=vocab).double() / rows
    expect = sorted_prefix_distribution(p.double(), **kw)
    assert torch.all(freq[expect == 0] == 0)
    assert torch.all((freq - expect).abs() <= 5 * torch.sqrt(expect * (1 - expect) / rows) + 1e-12), (freq, expect)


@pytest.mark.parametrize("device", DEVICES)
def test_sampling_from_logits_per_row_top_k_and_generators(gen, device):
    logits = randn(gen, 16, 300, device=device) * 3
    top_k = torch.ones(16, dtype=torch.int32, device=device)
    got = flashinfer.top_k_top_p_sampling_from_logits(logits, top_k, 0.9)
    assert torch.equal(got.long(), logits.argmax(-1))
    g = torch.Generator(device=device).manual_seed(3)
    a = flashinfer.sampling_from_logits(logits, generator=g)
    b = flashinfer.sampling_from_logits(logits, generator=torch.Generator(device=device).manual_seed(3))
    assert torch.equal(a, b)
    a2 = flashinfer.sampling_from_logits(logits, generator=g)  # the generator moved on
    assert not torch.equal(a, a2) or logits.softmax(-1).max() > 0.99
    with pytest.raises(NotImplementedError, match="filter_apply_order"):
        flashinfer.top_k_top_p_sampling_from_probs(logits.softmax(-1), 5, 0.9, filter_apply_order="top_p_first")


@pytest.mark.parametrize("device", DEVICES)
def test_renorm_and_mask(gen, device):
    probs = torch.softmax(randn(gen, 5, 64, device=device), -1)
    out = flashinfer.top_k_renorm_probs(probs, 6)
    for r in range(5):
        torch.testing.assert_close(out[r].double().cpu(), sorted_prefix_distribution(probs[r].double().cpu(), top_k=6))
    out = flashinfer.top_p_renorm_probs(probs, 0.4)
    for r in range(5):
        torch.testing.assert_close(out[r].double().cpu(), sorted_prefix_distribution(probs[r].double().cpu(),
                                                                                       top_p=0.4))
    logits = randn(gen, 5, 64, device=device)
    masked = flashinfer.top_k_mask_logits(logits, 3)
    kth = logits.topk(3, dim=-1).values[:, -1:]
    torch.testing.assert_close(masked, torch.where(logits >= kth, logits, torch.full_like(logits, float("-inf"))))


@pytest.mark.parametrize("device", DEVICES)
def test_chain_speculative_sampling(gen, device):
    rows, n, vocab = 3, 4, 32
    target = torch.softmax(randn(gen, rows, n + 1, vocab, device=device), -1)
    draft = target[:, :n].clone()
    ids = torch.randint(0, vocab, (rows, n), generator=gen).to(device=device, dtype=torch.int32)
    acc = torch.zeros(rows, dtype=torch.int32, device=device)
    out, accepted, emitted = flashinfer.chain_speculative_sampling(draft, ids, target,
                                                                   maybe_output_accepted_token_num=acc)
    assert accepted is acc and torch.all(acc == n) and torch.all(emitted == n)
    assert torch.equal(out[:, :n], ids) and torch.all((out[:, n] >= 0) & (out[:, n] < vocab))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("gemma", [False, True])
def test_norms(gen, device, gemma):
    dtype = DTYPES[device]
    x = randn(gen, 7, 256, dtype=dtype, device=device)
    w = randn(gen, 256, dtype=dtype, device=device)
    res = randn(gen, 7, 256, dtype=dtype, device=device)

    def ref(t):
        t = t.double()
        return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6) * ((1.0 if gemma else 0.0) + w.double())

    fn = flashinfer.gemma_rmsnorm if gemma else flashinfer.rmsnorm
    torch.testing.assert_close(fn(x, w).double(), ref(x), **tol(dtype))
    qk = randn(gen, 3, 4, 256, dtype=dtype, device=device)  # QK norm: [tokens, heads, head_dim]
    torch.testing.assert_close(fn(qk, w).double(), ref(qk), **tol(dtype))
    expect_res = (x + res)
    fused = flashinfer.gemma_fused_add_rmsnorm if gemma else flashinfer.fused_add_rmsnorm
    fused(x, res, w)
    torch.testing.assert_close(res, expect_res, rtol=0, atol=0)
    torch.testing.assert_close(x.double(), ref(expect_res), **tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_chunk_gated_delta_rule(gen, device):
    dtype, t, h, dk, dv = DTYPES[device], 10, 2, 16, 32
    q = randn(gen, t, h, dk, dtype=dtype, device=device)
    k = torch.nn.functional.normalize(randn(gen, t, h, dk), dim=-1).to(dtype=dtype, device=device)
    v = randn(gen, t, h, dv, dtype=dtype, device=device)
    g = (torch.rand(t, h, generator=gen) * 0.2 + 0.8).to(device)
    beta = torch.rand(t, h, generator=gen).to(device)
    cu = torch.tensor([0, 4, 10], dtype=torch.int32, device=device)
    out, state = flashinfer.chunk_gated_delta_rule(q, k, v, g, beta, cu_seqlens=cu, output_final_state=True)
    scale = dk ** -0.5
    for b in range(2):
        for hh in range(h):
            s = torch.zeros(dv, dk, dtype=torch.float64)
            for i in range(int(cu[b]), int(cu[b + 1])):
                kt, vt, qt = k[i, hh].double().cpu(), v[i, hh].double().cpu(), q[i, hh].double().cpu()
                a, be = float(g[i, hh]), float(beta[i, hh])
                s = a * s - be * torch.outer(a * s @ kt - vt, kt)
                torch.testing.assert_close(out[i, hh].double().cpu(), scale * s @ qt, **tol(dtype))
            torch.testing.assert_close(state[b, hh].double().cpu(), s, **tol(dtype))


def test_token_penalties_beyond_flashinfer(gen):
    logits = randn(gen, 2, 20)
    ids = torch.tensor([[1, 1, 5, -1], [0, -1, -1, -1]], dtype=torch.int32)
    expect = logits.clone()
    for r, seen in ((0, {1: 2, 5: 1}), (1, {0: 1})):
        for tok, count in seen.items():
            x = expect[r, tok]
            x = x / 1.5 if x > 0 else x * 1.5
            expect[r, tok] = x - 0.1 * count - 0.2
    flashinfer.apply_token_penalties(logits, token_ids=ids, repetition_penalty=1.5, frequency_penalty=0.1,
                                     presence_penalty=0.2)
    torch.testing.assert_close(logits, expect)


def test_unsupported_arguments_raise_naming_them():
    w = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace("cpu"))
    i32 = dict(dtype=torch.int32)
    with pytest.raises(NotImplementedError, match="pos_encoding_mode"):
        w.plan(torch.tensor([0, 1], **i32), torch.tensor([0], **i32), torch.tensor([1], **i32), 2, 2, 64, 16,
               pos_encoding_mode="ROPE_LLAMA")
    with pytest.raises(NotImplementedError, match="custom_mask"):
        flashinfer.single_prefill_with_kv_cache(torch.zeros(2, 2, 64), torch.zeros(2, 2, 64), torch.zeros(2, 2, 64),
                                                custom_mask=torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(NotImplementedError, match="seed"):
        flashinfer.sampling_from_probs(torch.ones(2, 4) / 4, seed=torch.tensor([1]))


def test_errors_from_kvserve_keep_their_type():
    import kvserve
    with pytest.raises(kvserve.InvalidProblem, match=r"argument 'k': expected shape \[1, 2, \*, 64\]"):
        flashinfer.single_decode_with_kv_cache(torch.zeros(2, 64), torch.zeros(5, 2, 32), torch.zeros(5, 2, 32))


@pytest.mark.parametrize("device", DEVICES)
def test_batch_decode_fp8_cache_with_scales(gen, device):
    hk, group, d, page_size = 2, 4, 128, 16
    cache, indptr, indices, last = paged(gen, [20, 45], page_size, hk, d, "NHD", torch.float32, device)
    k_scale, v_scale = 0.5, 2.0
    fp8 = (cache / torch.tensor([k_scale, v_scale], device=device)[None, :, None, None, None]).to(torch.float8_e4m3fn)
    w = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace(device))
    w.plan(indptr, indices, last, hk * group, hk, d, page_size, q_data_type=torch.float16,
           kv_data_type=torch.float8_e4m3fn)
    q = randn(gen, 2, hk * group, d, dtype=torch.float16, device=device)
    out = w.run(q, fp8, k_scale=k_scale, v_scale=v_scale)
    real = fp8.float() * torch.tensor([k_scale, v_scale], device=device)[None, :, None, None, None]
    for b in range(2):
        k, v = gather(real, indptr, indices, last, b, "NHD")
        ref, _ = ref_attention(q[b:b + 1], k, v)
        torch.testing.assert_close(out[b].double(), ref[0], rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("device", DEVICES)
def test_cuda_graph_buffers_hold_each_plans_table(gen, device):
    """With use_cuda_graph, plan() writes the page table into the caller's
    fixed buffers (a captured run reads them); results equal a plain wrapper's."""
    dtype, hk, d, page_size = DTYPES[device], 2, 64, 4
    i32 = dict(dtype=torch.int32, device=device)
    bufs = (torch.zeros(9, **i32), torch.zeros(64, **i32), torch.zeros(8, **i32))
    graph = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace(device), use_cuda_graph=True,
                                                          paged_kv_indptr_buffer=bufs[0],
                                                          paged_kv_indices_buffer=bufs[1],
                                                          paged_kv_last_page_len_buffer=bufs[2])
    plain = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace(device))
    for lengths in ([5, 9, 1], [12, 3, 7]):
        cache, indptr, indices, last = paged(gen, lengths, page_size, hk, d, "NHD", dtype, device)
        for w in (graph, plain):
            w.plan(indptr, indices, last, hk, hk, d, page_size, q_data_type=dtype)
        assert torch.equal(bufs[0][:4], indptr) and torch.equal(bufs[1][: len(indices)], indices)
        q = randn(gen, 3, hk, d, dtype=dtype, device=device)
        torch.testing.assert_close(graph.run(q, cache), plain.run(q, cache), rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_plan_prepares_the_plans_a_captured_run_replays(gen, device):
    """A CUDA-graph replay does not call run(): plan() itself must leave the
    new schedule in the workspace. Replayed here by launching the kvserve plan
    with the captured arguments after a second plan(). (The CPU schedule is
    trivial; on CUDA the split-KV schedule in the workspace is what this checks.)"""
    dtype, hk, d, page_size = DTYPES[device], 2, 64, 4
    i32 = dict(dtype=torch.int32, device=device)
    bufs = (torch.zeros(4, **i32), torch.zeros(64, **i32), torch.zeros(3, **i32))
    ws = workspace(device)
    w = flashinfer.BatchDecodeWithPagedKVCacheWrapper(ws, use_cuda_graph=True, paged_kv_indptr_buffer=bufs[0],
                                                      paged_kv_indices_buffer=bufs[1],
                                                      paged_kv_last_page_len_buffer=bufs[2])
    cache, indptr, indices, last = paged(gen, [5, 9, 1], page_size, hk, d, "NHD", dtype, device)
    w.plan(indptr, indices, last, hk, hk, d, page_size, q_data_type=dtype)
    q = randn(gen, 3, hk, d, dtype=dtype, device=device)
    w.run(q, cache)
    (_, plan), = w._plans.items()
    captured = dict(q=q, kv=dict(k_pages=cache[:, 0], v_pages=cache[:, 1], indptr=bufs[0], indices=bufs[1],
                                 last_page_len=bufs[2]), workspace=ws)
    # The next step: longer requests, same batch, same pool.
    lengths = [7, 12, 2]
    counts = [-(-n // page_size) for n in lengths]
    indptr2 = torch.tensor([0, *torch.tensor(counts).cumsum(0).tolist()], **i32)
    indices2 = torch.randperm(cache.shape[0], generator=gen)[: sum(counts)].to(**i32)
    last2 = torch.tensor([n - (c - 1) * page_size for n, c in zip(lengths, counts)], **i32)
    w.plan(indptr2, indices2, last2, hk, hk, d, page_size, q_data_type=dtype)
    replayed = torch.empty_like(q)
    plan.run(out=replayed, **captured)
    plain = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace(device))
    plain.plan(indptr2, indices2, last2, hk, hk, d, page_size, q_data_type=dtype)
    torch.testing.assert_close(replayed, plain.run(q, cache), rtol=0, atol=0)


def test_timing_table_runs():
    import pathlib
    import subprocess
    import sys
    tool = pathlib.Path(__file__).resolve().parents[2] / "python" / "tools" / "bench_flashinfer.py"
    run = subprocess.run([sys.executable, str(tool), "--small", "--iters", "150"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["decode", "prefill", "top-p"]
