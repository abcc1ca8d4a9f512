"""FlashInfer's sampling API (flashinfer.sampling) on kvserve's Sampling,
SamplingRenorm and ChainSpeculativeSampling, plus token penalties (kvserve's
TokenPenalty, which FlashInfer does not have).

Random numbers: kvserve draws from Philox keyed by (seed, offset). Given
seed / offset are used as they are; otherwise they come from `generator` (or
torch's default generator of the device), whose offset is advanced, so
successive calls draw fresh numbers as with FlashInfer."""

import torch

import kvserve as _kv

from . import _common as C

_F = _kv.SamplingFilter


def _seed_offset(api, generator, seed, offset, device, draws):
    for name, value in (("seed", seed), ("offset", offset)):
        if isinstance(value, torch.Tensor):
            raise NotImplementedError(f"kvserve.flashinfer.{api}: argument '{name}' as a tensor is not supported "
                                      "(kvserve's per-row seeds are int32 [batch]; pass an int)")
    if seed is not None:
        return int(seed) & ((1 << 64) - 1), int(offset or 0)
    if generator is None:
        dev = torch.device(device)
        generator = (torch.cuda.default_generators[dev.index if dev.index is not None else torch.cuda.current_device()]
                     if dev.type == "cuda" else torch.default_generator)
    try:  # CUDA generators keep a Philox offset: read and advance it (no device sync)
        start = generator.get_offset()
        generator.set_offset(start + 4 * draws)
        return generator.initial_seed(), start
    except (AttributeError, RuntimeError):  # CPU generators: draw a fresh key from them
        key = torch.randint(0, 2 ** 62, (2,), generator=generator, device="cpu")
        return int(key[0]), int(key[1])


def _param(value, dtype, device, rows):
    """A scalar or per-row tensor parameter: (scalar or None, tensor or None).
    A tensor stays on the device (one value is broadcast to every row), so no
    parameter is read back to the host."""
    if isinstance(value, torch.Tensor):
        value = C.on(value.reshape(-1), device, dtype)
        return None, value.expand(rows).contiguous() if value.numel() == 1 else value
    return value, None


def _sample(api, x, kind, filt, indices, generator, check_nan, seed, offset, top_k=None, top_p=None, min_p=None,
            order="top_k_first"):
    C.refuse(api, filter_apply_order=(order, ("top_k_first", "joint")))
    if indices is not None:
        x = x[C.on(indices, x.device, torch.int64)]
    if check_nan and bool(torch.isnan(x).any()):
        raise ValueError(f"kvserve.flashinfer.{api}: input contains NaN")
    x = x.float() if x.dtype != torch.float32 else x
    rows, vocab = x.shape
    device = x.device
    k, k_rows = _param(top_k, torch.int32, device, rows)
    p, p_rows = _param(top_p, torch.float32, device, rows)
    m, m_rows = _param(min_p, torch.float32, device, rows)
    per_row = any(t is not None for t in (k_rows, p_rows, m_rows))
    if per_row:  # every parameter the filter reads then comes from a tensor
        k_rows = k_rows if k_rows is not None or k is None else torch.full((rows,), int(k), dtype=torch.int32,
                                                                            device=device)
        p_rows = p_rows if p_rows is not None or p is None else torch.full((rows,), float(p), device=device)
        m_rows = m_rows if m_rows is not None or m is None else torch.full((rows,), float(m), device=device)
    fields = dict(vocab=vocab, max_batch=C.batch_capacity(rows), input=kind, filter=filt,
                  order=_kv.TopKTopPOrder.joint if order == "joint" else _kv.TopKTopPOrder.k_then_p,
                  params=_kv.ParamSource.per_row if per_row else _kv.ParamSource.scalar)
    if not per_row:
        fields.update({n: v for n, v in (("top_k", None if k is None else int(k)),
                                         ("top_p", None if p is None else float(p)),
                                         ("min_p", None if m is None else float(m))) if v is not None})
    plan = C.SHARED_PLANS.get(_kv.SamplingPlan, tuple(sorted(fields.items(), key=lambda kv: kv[0])),
                              lambda: _kv.SamplingDesc(**fields), C.device_name(device))
    out = torch.empty(rows, dtype=torch.int32, device=device)
    s, o = _seed_offset(api, generator, seed, offset, device, 1)
    temperature = torch.ones(rows, device=device) if per_row and kind == _kv.SamplingInput.logits else None
    plan.run(input=x, out=out, top_k=k_rows if per_row else None, top_p=p_rows if per_row else None,
             min_p=m_rows if per_row else None, temperature=temperature, seed=s, offset=o)
    return out


_P, _L = _kv.SamplingInput.probs, _kv.SamplingInput.logits


def sampling_from_probs(probs, indices=None, deterministic=True, generator=None, check_nan=False, seed=None,
                        offset=None):
    return _sample("sampling_from_probs", probs, _P, _F.none, indices, generator, check_nan, seed, offset)


def sampling_from_logits(logits, indices=None, deterministic=True, generator=None, check_nan=False, seed=None,
                         offset=None):
    return _sample("sampling_from_logits", logits, _L, _F.none, indices, generator, check_nan, seed, offset)


def top_p_sampling_from_probs(probs, top_p, indices=None, deterministic=True, generator=None, check_nan=False,
                              seed=None, offset=None):
    return _sample("top_p_sampling_from_probs", probs, _P, _F.top_p, indices, generator, check_nan, seed, offset,
                   top_p=top_p)


def top_k_sampling_from_probs(probs, top_k, indices=None, deterministic=True, generator=None, check_nan=False,
                              seed=None, offset=None):
    return _sample("top_k_sampling_from_probs", probs, _P, _F.top_k, indices, generator, check_nan, seed, offset,
                   top_k=top_k)


def min_p_sampling_from_probs(probs, min_p, indices=None, deterministic=True, generator=None, check_nan=False,
                              seed=None, offset=None):
    return _sample("min_p_sampling_from_probs", probs, _P, _F.min_p, indices, generator, check_nan, seed, offset,
                   min_p=min_p)


def top_k_top_p_sampling_from_probs(probs, top_k, top_p, indices=None, filter_apply_order="top_k_first",
                                    deterministic=True, generator=None, check_nan=False, seed=None, offset=None):
    return _sample("top_k_top_p_sampling_from_probs", probs, _P, _F.top_k_top_p, indices, generator, check_nan,
                   seed, offset, top_k=top_k, top_p=top_p, order=filter_apply_order)


def top_k_top_p_sampling_from_logits(logits, top_k, top_p, indices=None, filter_apply_order="top_k_first",
                                     deterministic=True, generator=None, check_nan=False, seed=None, offset=None):
    return _sample("top_k_top_p_sampling_from_logits", logits, _L, _F.top_k_top_p, indices, generator, check_nan,
                   seed, offset, top_k=top_k, top_p=top_p, order=filter_apply_order)


def _renorm(api, x, kind, top_k=None, top_p=None):
    rows, vocab = x.shape
    device = x.device
    k, k_rows = _param(top_k, torch.int32, device, rows)
    p, p_rows = _param(top_p, torch.float32, device, rows)
    per_row = k_rows is not None or p_rows is not None
    fields = dict(vocab=vocab, max_batch=C.batch_capacity(rows), kind=kind,
                  params=_kv.ParamSource.per_row if per_row else _kv.ParamSource.scalar)
    if not per_row:
        fields.update({"top_k": int(k)} if k is not None else {"top_p": float(p)})
    plan = C.SHARED_PLANS.get(_kv.SamplingRenormPlan, tuple(sorted(fields.items(), key=lambda kv: kv[0])),
                              lambda: _kv.SamplingRenormDesc(**fields), C.device_name(device))
    x = x.float() if x.dtype != torch.float32 else x
    out = torch.empty_like(x)
    plan.run(input=x, out=out, top_k=k_rows, top_p=p_rows)
    return out


def top_p_renorm_probs(probs, top_p):
    return _renorm("top_p_renorm_probs", probs, _kv.RenormKind.top_p_renorm_probs, top_p=top_p)


def top_k_renorm_probs(probs, top_k):
    return _renorm("top_k_renorm_probs", probs, _kv.RenormKind.top_k_renorm_probs, top_k=top_k)


def top_k_mask_logits(logits, top_k):
    return _renorm("top_k_mask_logits", logits, _kv.RenormKind.top_k_mask_logits, top_k=top_k)


def chain_speculative_sampling(draft_probs, draft_token_ids, target_probs, maybe_output_accepted_token_num=None,
                               maybe_output_emitted_draft_token_num=None, deterministic=True, generator=None,
                               seed=None, offset=None):
    """Returns (output_token_ids [B, n+1] padded with -1, accepted [B],
    emitted [B]); the two counts are added to the given tensors in place."""
    api = "chain_speculative_sampling"
    rows, n, vocab = draft_probs.shape
    device = draft_probs.device
    plan = C.SHARED_PLANS.get(_kv.ChainSpeculativeSamplingPlan, (vocab, C.batch_capacity(rows), n),
                              lambda: _kv.ChainSpeculativeSamplingDesc(vocab=vocab, max_batch=C.batch_capacity(rows),
                                                                       num_draft_tokens=n), C.device_name(device))
    out = torch.empty((rows, n + 1), dtype=torch.int32, device=device)
    accepted = torch.empty(rows, dtype=torch.int32, device=device)
    emitted = torch.empty(rows, dtype=torch.int32, device=device)
    s, o = _seed_offset(api, generator, seed, offset, device, n + 1)
    plan.run(draft_token_ids=C.on(draft_token_ids, device), draft_probs=draft_probs.float(),
             target_probs=target_probs.float(), out=out, accepted=accepted, emitted=emitted, seed=s, offset=o)
    if maybe_output_accepted_token_num is not None:
        accepted = maybe_output_accepted_token_num.add_(accepted)
    if maybe_output_emitted_draft_token_num is not None:
        emitted = maybe_output_emitted_draft_token_num.add_(emitted)
    return out, accepted, emitted


def apply_token_penalties(logits, token_ids=None, token_counts=None, repetition_penalty=1.0, frequency_penalty=0.0,
                          presence_penalty=0.0):
    """kvserve's TokenPenalty (not a FlashInfer function): logits [B, vocab]
    float32 updated in place from each row's history, token ids [B, L]
    (-1 pads) or counts [B, vocab]. Penalties are floats or [B] tensors."""
    api = "apply_token_penalties"
    if (token_ids is None) == (token_counts is None):
        raise ValueError(f"kvserve.flashinfer.{api}: give exactly one of 'token_ids' and 'token_counts'")
    rows, vocab = logits.shape
    device = logits.device
    values = [_param(v, torch.float32, device, rows)
              for v in (repetition_penalty, frequency_penalty, presence_penalty)]
    per_row = any(t is not None for _, t in values)
    history = _kv.PenaltyHistory.token_ids if token_ids is not None else _kv.PenaltyHistory.token_counts
    fields = dict(vocab=vocab, max_batch=C.batch_capacity(rows), history=history,
                  params=_kv.ParamSource.per_row if per_row else _kv.ParamSource.scalar)
    if not per_row:
        fields.update(repetition=float(values[0][0]), frequency=float(values[1][0]), presence=float(values[2][0]))
    plan = C.SHARED_PLANS.get(_kv.TokenPenaltyPlan, tuple(sorted(fields.items(), key=lambda kv: kv[0])),
                              lambda: _kv.TokenPenaltyDesc(**fields), C.device_name(device))
    rows_of = [t if t is not None else torch.full((rows,), float(v), device=device) for v, t in values]
    plan.run(logits=logits, token_ids=None if token_ids is None else C.on(token_ids, device),
             counts=None if token_counts is None else C.on(token_counts, device),
             repetition=rows_of[0] if per_row else None, frequency=rows_of[1] if per_row else None,
             presence=rows_of[2] if per_row else None, workspace=C.workspace_for(plan, device))
    return logits
