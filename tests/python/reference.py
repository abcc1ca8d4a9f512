"""Plain numpy (float64) references the kvserve plans are checked against,
written from the formulas in the C++ headers, not from the library's code."""

import numpy as np


def attention(q, k, v, *, causal=False, sm_scale=None, soft_cap=0.0, window_left=-1):
    """q [Lq, Hq, D], k [Lkv, Hk, D], v [Lkv, Hk, Dv] -> out [Lq, Hq, Dv], lse [Lq, Hq].
    Query i sits at position i + Lkv - Lq; a row that sees no key gives 0 and -inf."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    lq, hq, d = q.shape
    lkv, hk = k.shape[:2]
    scale = 1.0 / np.sqrt(d) if sm_scale is None else sm_scale
    group = hq // hk
    out = np.zeros((lq, hq, v.shape[2]))
    lse = np.full((lq, hq), -np.inf)
    for h in range(hq):
        s = scale * q[:, h] @ k[:, h // group].T  # [Lq, Lkv]
        if soft_cap > 0:
            s = soft_cap * np.tanh(s / soft_cap)
        pos = np.arange(lq)[:, None] + lkv - lq
        j = np.arange(lkv)[None, :]
        visible = np.ones_like(s, bool)
        if causal:
            visible &= j <= pos
        if window_left >= 0:
            visible &= j >= pos - window_left
        s = np.where(visible, s, -np.inf)
        for i in range(lq):
            if not visible[i].any():
                continue
            m = s[i].max()
            w = np.exp(s[i] - m)
            out[i, h] = w @ v[:, h // group] / w.sum()
            lse[i, h] = m + np.log(w.sum())
    return out, lse


def gather_pages(pool, pages, length, layout="NHD"):
    """A request's keys [length, H, D] from a paged pool."""
    pool = np.asarray(pool)
    if layout == "HND":
        pool = pool.transpose(0, 2, 1, 3)
    return pool[pages].reshape(-1, *pool.shape[2:])[:length]


def merge(v_a, lse_a, v_b, lse_b):
    """Two attention states over disjoint keys -> the state over their union."""
    m = np.maximum(lse_a, lse_b)
    safe = np.where(np.isfinite(m), m, 0.0)
    wa = np.where(np.isneginf(lse_a), 0.0, np.exp(lse_a - safe))
    wb = np.where(np.isneginf(lse_b), 0.0, np.exp(lse_b - safe))
    total = wa + wb
    lse = np.where(total > 0, safe + np.log(np.where(total > 0, total, 1.0)), -np.inf)
    va = np.where(np.isneginf(lse_a)[..., None], 0.0, v_a)
    vb = np.where(np.isneginf(lse_b)[..., None], 0.0, v_b)
    v = (wa[..., None] * va + wb[..., None] * vb) / np.where(total > 0, total, 1.0)[..., None]
    return v, lse


def rmsnorm(x, w, eps, offset=0.0):
    x = np.asarray(x, np.float64)
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * (offset + np.asarray(w, np.float64))


def gated_delta_rule(q, k, v, alpha, beta, cu_seqlens, scale, initial_state=None):
    """The exact recurrence; q/k [T, Hqk, Dk], v [T, Hv, Dv], alpha/beta [T, H]."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    t_all, hqk, dk = q.shape
    hv, dv = v.shape[1:]
    heads = max(hqk, hv)
    out = np.zeros((t_all, heads, dv))
    batch = len(cu_seqlens) - 1
    final = np.zeros((batch, heads, dv, dk))
    for b in range(batch):
        for h in range(heads):
            s = np.zeros((dv, dk)) if initial_state is None else np.array(initial_state[b, h], np.float64)
            for t in range(cu_seqlens[b], cu_seqlens[b + 1]):
                kt, vt, qt = k[t, h // (heads // hqk)], v[t, h // (heads // hv)], q[t, h // (heads // hqk)]
                a, be = float(alpha[t, h]), float(beta[t, h])
                s = a * s - be * np.outer(a * s @ kt - vt, kt)
                out[t, h] = scale * s @ qt
            final[b, h] = s
    return out, final
