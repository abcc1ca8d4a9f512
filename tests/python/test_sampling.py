"""Sampling, renorm / mask, chain speculative sampling and token penalties
against numpy references (sorted-prefix truncations, empirical frequencies)."""

import numpy as np
import pytest

import kvserve as K
from conftest import poisoned

F = K.SamplingFilter


def ranked(p):
    """Token ids by decreasing value, ties to the lower index."""
    return np.lexsort((np.arange(len(p)), -p))


def kept(p, filt, top_k=None, top_p=None, min_p=None):
    """The truncated, renormalised distribution of a probability row."""
    order = ranked(p)
    keep = np.zeros(len(p), bool)
    if filt == "top_k":
        keep[order[:top_k]] = True
    elif filt == "top_p":
        n = np.searchsorted(np.cumsum(p[order]), top_p * p.sum() * (1 - 1e-9)) + 1
        keep[order[:n]] = True
    elif filt == "min_p":
        keep = p >= min_p * p.max()
    else:
        keep[:] = True
    q = np.where(keep, p, 0.0)
    return q / q.sum()


def sample_rows(probs, **desc_fields):
    rows, vocab = probs.shape
    plan = K.SamplingPlan.create(K.SamplingDesc(vocab=vocab, max_batch=rows, **desc_fields))
    out = poisoned(rows, np.int32)
    plan.run(input=probs, out=out, seed=1234, offset=0)
    return out


@pytest.mark.parametrize("filt,params", [("none", {}), ("top_k", dict(top_k=5)), ("top_p", dict(top_p=0.6)),
                                         ("min_p", dict(min_p=0.3))])
def test_sampling_follows_the_truncated_distribution(rng, filt, params):
    vocab, rows = 13, 40000
    p = rng.dirichlet(np.ones(vocab) * 0.7)
    probs = np.tile(p.astype(np.float32), (rows, 1))
    out = sample_rows(probs, filter=getattr(F, filt), **params)
    expect = kept(p.astype(np.float32).astype(np.float64), filt, **params)
    freq = np.bincount(out, minlength=vocab) / rows
    assert np.all(freq[expect == 0] == 0), "a truncated token was sampled"
    bound = 5 * np.sqrt(expect * (1 - expect) / rows) + 1e-12
    assert np.all(np.abs(freq - expect) <= bound), (freq, expect)


def test_greedy_and_top_k_1_are_argmax_with_ties_to_the_lower_index(rng):
    rows, vocab = 64, 1000
    logits = rng.standard_normal((rows, vocab)).astype(np.float32)
    logits[3, [10, 20]] = 50.0  # a tie
    greedy = sample_rows(logits, input=K.SamplingInput.logits, filter=F.greedy)
    top1 = sample_rows(logits, input=K.SamplingInput.logits, filter=F.top_k, top_k=1)
    np.testing.assert_array_equal(greedy, np.argmax(logits, axis=1))
    np.testing.assert_array_equal(top1, greedy)
    assert greedy[3] == 10


def test_sampling_per_row_parameters_and_seeds(rng):
    rows, vocab = 8, 50
    probs = rng.dirichlet(np.ones(vocab), rows).astype(np.float32)
    plan = K.SamplingPlan.create(K.SamplingDesc(vocab=vocab, max_batch=rows, filter=F.top_k,
                                                params=K.ParamSource.per_row, random=K.RandomSource.per_row))
    top_k = np.ones(rows, np.int32)
    seeds, offsets = rng.integers(0, 2**31, rows).astype(np.int32), np.zeros(rows, np.int32)
    out = poisoned(rows, np.int32)
    plan.run(input=probs, out=out, top_k=top_k, seeds=seeds, offsets=offsets)
    np.testing.assert_array_equal(out, np.argmax(probs, axis=1))
    top_k[:] = vocab
    a, b = poisoned(rows, np.int32), poisoned(rows, np.int32)
    plan.run(input=probs, out=a, top_k=top_k, seeds=seeds, offsets=offsets)
    plan.run(input=probs[::-1].copy(), out=b, top_k=top_k, seeds=seeds[::-1].copy(), offsets=offsets)
    np.testing.assert_array_equal(a, b[::-1])  # a row's stream is its own, wherever it sits


@pytest.mark.parametrize("kind", ["top_k_renorm_probs", "top_p_renorm_probs", "top_k_mask_logits"])
def test_sampling_renorm(rng, kind):
    rows, vocab, top_k, top_p = 6, 40, 7, 0.5
    x = rng.dirichlet(np.ones(vocab), rows).astype(np.float32)
    if kind == "top_k_mask_logits":
        x = rng.standard_normal((rows, vocab)).astype(np.float32)
    plan = K.SamplingRenormPlan.create(K.SamplingRenormDesc(vocab=vocab, max_batch=rows,
                                                            kind=getattr(K.RenormKind, kind), top_k=top_k,
                                                            top_p=top_p))
    out = poisoned(x.shape)
    plan.run(input=x, out=out)
    for r in range(rows):
        if kind == "top_k_mask_logits":
            expect = np.full(vocab, -np.inf, np.float32)
            keep = ranked(x[r])[:top_k]
            expect[keep] = x[r, keep]
            np.testing.assert_array_equal(out[r], expect)
        else:
            filt = "top_k" if kind == "top_k_renorm_probs" else "top_p"
            expect = kept(x[r].astype(np.float64), filt, top_k=top_k, top_p=top_p)
            np.testing.assert_allclose(out[r], expect, rtol=1e-5, atol=1e-7)


def test_chain_speculative_sampling_accepts_drafts_the_target_agrees_with(rng):
    rows, n, vocab = 4, 3, 20
    target = rng.dirichlet(np.ones(vocab), (rows, n + 1)).astype(np.float32)
    draft = target[:, :n].copy()  # identical distributions: every draft passes
    ids = rng.integers(0, vocab, (rows, n)).astype(np.int32)
    ids[2, 1] = 5
    target[2, 1, 5] = 0.0  # ... except row 2's second draft, which the target rules out
    plan = K.ChainSpeculativeSamplingPlan.create(K.ChainSpeculativeSamplingDesc(vocab=vocab, max_batch=rows,
                                                                                num_draft_tokens=n))
    out, accepted, emitted = poisoned((rows, n + 1), np.int32), poisoned(rows, np.int32), poisoned(rows, np.int32)
    plan.run(draft_token_ids=ids, draft_probs=draft, target_probs=target, out=out, accepted=accepted,
             emitted=emitted, seed=7, offset=0)
    for r in range(rows):
        a = 1 if r == 2 else n
        assert emitted[r] == a
        np.testing.assert_array_equal(out[r, :a], ids[r, :a])
        assert 0 <= out[r, a] < vocab and out[r, a] != (5 if r == 2 else -1)
        assert np.all(out[r, a + 1:] == -1)
    assert accepted[2] == n - 1 and np.all(accepted[[0, 1, 3]] == n)


@pytest.mark.parametrize("history", ["token_counts", "token_ids"])
def test_token_penalty(rng, history):
    rows, vocab, rep, freq, pres = 3, 30, 1.3, 0.25, 0.5
    logits = rng.standard_normal((rows, vocab)).astype(np.float32)
    ids = rng.integers(-1, vocab, (rows, 12)).astype(np.int32)  # -1: padding
    counts = np.stack([np.bincount(r[r >= 0], minlength=vocab) for r in ids]).astype(np.int32)
    expect = logits.copy()
    seen = counts > 0
    expect = np.where(seen, np.where(expect > 0, expect / np.float32(rep), expect * np.float32(rep)), expect)
    expect = np.where(seen, expect - np.float32(freq) * counts - np.float32(pres), expect).astype(np.float32)
    desc = K.TokenPenaltyDesc(vocab=vocab, max_batch=rows, history=getattr(K.PenaltyHistory, history),
                              repetition=rep, frequency=freq, presence=pres)
    plan = K.TokenPenaltyPlan.create(desc)
    history_arg = dict(counts=counts) if history == "token_counts" else dict(token_ids=ids)
    plan.run(logits=logits, workspace=K.workspace(plan), **history_arg)
    np.testing.assert_allclose(logits, expect, rtol=1e-6, atol=1e-6)
