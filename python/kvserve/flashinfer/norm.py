"""FlashInfer's norms (flashinfer.norm) on kvserve's RmsNorm: plain and
Gemma, with and without the fused residual add; 3-D inputs are QK norms."""

import torch

import kvserve as _kv

from . import _common as C


def _norm(api, x, weight, eps, offset, residual, out):
    dtype = C.kv_dtype(api, "input", x.dtype)
    hidden = x.shape[-1]
    fused = residual is not None
    key = (hidden, dtype, float(eps), offset, fused)
    plan = C.SHARED_PLANS.get(_kv.RmsNormPlan, key, lambda: _kv.RmsNormDesc(
        hidden_size=hidden, dtype=dtype, eps=float(eps), weight_offset=offset, fused_add=fused),
        C.device_name(x.device))
    plan.run(x=x, weight=weight, residual=residual, out=out)
    return out


def rmsnorm(input, weight, eps=1e-6, out=None, enable_pdl=None):
    return _norm("rmsnorm", input, weight, eps, 0.0, None, torch.empty_like(input) if out is None else out)


def gemma_rmsnorm(input, weight, eps=1e-6, out=None, enable_pdl=None):
    return _norm("gemma_rmsnorm", input, weight, eps, 1.0, None, torch.empty_like(input) if out is None else out)


def fused_add_rmsnorm(input, residual, weight, eps=1e-6, enable_pdl=None):
    """residual += input; input = rmsnorm(residual) * weight (both in place)."""
    _norm("fused_add_rmsnorm", input, weight, eps, 0.0, residual, input)


def gemma_fused_add_rmsnorm(input, residual, weight, eps=1e-6, enable_pdl=None):
    """residual += input; input = rmsnorm(residual) * (1 + weight) (both in place)."""
    _norm("gemma_fused_add_rmsnorm", input, weight, eps, 1.0, residual, input)
