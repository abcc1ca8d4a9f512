"""FlashInfer's gated delta rule prefill (flashinfer.gdn_prefill) on kvserve's GdnPrefill."""

import torch

import kvserve as _kv

from . import _common as C


def chunk_gated_delta_rule(q, k, v, g=None, beta=None, scale=None, initial_state=None, output_final_state=False,
                           cu_seqlens=None, use_qk_l2norm_in_kernel=False, output=None, output_state=None,
                           **newer):
    """q / k [T, H_qk, d_k], v [T, H_v, d_v]; g (the decay alpha, not its log)
    and beta float32 [T, max(H_qk, H_v)], default ones; states float32
    [N, H, d_v, d_k]. Returns output, or (output, final_state)."""
    api = "chunk_gated_delta_rule"
    C.refuse_extra(api, newer)
    tokens, hqk, dk = q.shape
    hv, dv = v.shape[1], v.shape[2]
    heads = max(hqk, hv)
    device = q.device
    if cu_seqlens is None:
        cu_seqlens = torch.tensor([0, tokens], dtype=torch.int32, device=device)
    cu = C.on(cu_seqlens, device)
    batch = cu.numel() - 1
    ones = None
    if g is None or beta is None:
        ones = torch.ones((tokens, heads), dtype=torch.float32, device=device)
    dtype = C.kv_dtype(api, "q", q.dtype)
    key = (C.batch_capacity(batch), C.batch_capacity(max(tokens, 1)), hqk, hv, dk, dv, dtype, scale,
           bool(use_qk_l2norm_in_kernel))
    plan = C.SHARED_PLANS.get(_kv.GdnPrefillPlan, key, lambda: _kv.GdnPrefillDesc(
        max_batch=key[0], max_tokens=key[1], num_qk_heads=hqk, num_v_heads=hv, head_dim_k=dk, head_dim_v=dv,
        dtype=dtype, scale=None if scale is None else float(scale), use_qk_l2norm=bool(use_qk_l2norm_in_kernel)),
        C.device_name(device))
    if output is None:
        output = torch.empty((tokens, heads, dv), dtype=q.dtype, device=device)
    if output_final_state and output_state is None:
        output_state = torch.empty((batch, heads, dv, dk), dtype=torch.float32, device=device)
    plan.run(q=q, k=k, v=v, alpha=ones if g is None else g, beta=ones if beta is None else beta, cu_seqlens=cu,
             initial_state=initial_state, out=output, final_state=output_state if output_final_state else None,
             workspace=C.workspace_for(plan, device))
    return (output, output_state) if output_final_state else output
