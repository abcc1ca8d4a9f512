"""FlashInfer's attention-state merges (flashinfer.cascade) on kvserve's
MergeState / MergeStates. FlashInfer's LSE is base 2, kvserve's natural:
converted on the way in and out."""

import torch

import kvserve as _kv

from . import _common as C


def _merge_plan(plan_class, desc_class, v, api):
    heads, dim = v.shape[-2], v.shape[-1]
    dtype = C.kv_dtype(api, "v", v.dtype)
    return C.SHARED_PLANS.get(plan_class, (heads, dim, dtype),
                              lambda: desc_class(num_heads=heads, head_dim=dim, dtype=dtype), C.device_name(v.device))


def merge_state_in_place_natural(v, s, v_other, s_other):
    """(v, s) <- merge with (v_other, s_other), both LSEs natural (for the cascade wrapper)."""
    plan = _merge_plan(_kv.MergeStatePlan, _kv.MergeStateDesc, v, "merge_state_in_place")
    plan.run(v_a=v, lse_a=s, v_b=v_other, lse_b=s_other, v_out=v, lse_out=s)


def merge_state(v_a, s_a, v_b, s_b):
    """Two states [seq_len, num_heads, head_dim] with base-2 LSEs -> (V, S)."""
    plan = _merge_plan(_kv.MergeStatePlan, _kv.MergeStateDesc, v_a, "merge_state")
    v = torch.empty_like(v_a)
    s = torch.empty(s_a.shape, dtype=torch.float32, device=v_a.device)
    plan.run(v_a=v_a, lse_a=s_a * C.LN2, v_b=v_b, lse_b=s_b * C.LN2, v_out=v, lse_out=s)
    return v, s.mul_(C.LOG2E)


def merge_state_in_place(v, s, v_other, s_other, mask=None):
    """(v, s) <- merge of (v, s) and (v_other, s_other); with `mask` [seq_len]
    only the rows where it is true."""
    if mask is None:
        s_nat = s * C.LN2
        merge_state_in_place_natural(v, s_nat, v_other, s_other * C.LN2)
        s.copy_(s_nat.mul_(C.LOG2E))
        return
    merged_v, merged_s = merge_state(v, s, v_other, s_other)
    keep = mask.to(torch.bool)
    v.copy_(torch.where(keep[:, None, None], merged_v, v))
    s.copy_(torch.where(keep[:, None], merged_s, s))


def merge_states(v, s):
    """N states per row, v [seq_len, N, num_heads, head_dim], s [seq_len, N, num_heads] -> (V, S)."""
    plan = _merge_plan(_kv.MergeStatesPlan, _kv.MergeStatesDesc, v, "merge_states")
    out = torch.empty((v.shape[0], v.shape[2], v.shape[3]), dtype=v.dtype, device=v.device)
    lse = torch.empty((v.shape[0], v.shape[2]), dtype=torch.float32, device=v.device)
    plan.run(v=v, lse=s * C.LN2, v_out=out, lse_out=lse)
    return out, lse.mul_(C.LOG2E)
