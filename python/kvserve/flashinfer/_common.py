"""What every part of kvserve.flashinfer shares: dtype and device mapping,
refusing unsupported arguments by name, plan caches, LSE base conversion."""

import math

import torch

import kvserve as _kv

# FlashInfer's attention LSE is log2(sum 2^(s * log2 e)) = lse_e * log2(e);
# kvserve's is natural (docs/attention.md). Converted at the boundary.
LOG2E = 1.0 / math.log(2.0)
LN2 = math.log(2.0)

_TO_KV = {torch.float16: _kv.DType.f16, torch.bfloat16: _kv.DType.bf16, torch.float32: _kv.DType.f32}
_FP8 = {getattr(torch, n): d for n, d in (("float8_e4m3fn", _kv.DType.fp8_e4m3), ("float8_e5m2", _kv.DType.fp8_e5m2))
        if hasattr(torch, n)}
_TO_KV.update(_FP8)


def torch_dtype(api, name, value):
    """A FlashInfer dtype argument ("float16", torch.bfloat16, ...) as a torch dtype."""
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and isinstance(getattr(torch, value, None), torch.dtype):
        return getattr(torch, value)
    raise TypeError(f"kvserve.flashinfer.{api}: argument '{name}': expected a torch dtype or its name, got {value!r}")


def kv_dtype(api, name, value):
    t = torch_dtype(api, name, value)
    if t not in _TO_KV:
        raise NotImplementedError(f"kvserve.flashinfer.{api}: argument '{name}' = {t} is not supported "
                                  f"(kvserve takes float16, bfloat16, float32 and fp8 KV caches)")
    return _TO_KV[t]


def refuse(api, **arguments):
    """Raises NotImplementedError naming the first argument given a value
    kvserve does not implement. Each keyword maps to (value, accepted values)."""
    for name, (value, accepted) in arguments.items():
        if not any(value is a or (type(value) is type(a) and value == a) for a in accepted):
            raise NotImplementedError(f"kvserve.flashinfer.{api}: argument '{name}' = {value!r} is not supported "
                                      f"by kvserve (supported: {', '.join(map(repr, accepted))})")


def refuse_extra(api, extra):
    """Arguments of newer FlashInfer versions kvserve has no equivalent for:
    accepted only at their neutral values (None, 0, False)."""
    for name, value in extra.items():
        if value is not None and value is not False and not (isinstance(value, int) and value == 0):
            raise NotImplementedError(f"kvserve.flashinfer.{api}: argument '{name}' is not supported by kvserve")


def device_name(device):
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.current_device() if device.index is None else device.index}"
    if device.type != "cpu":
        raise NotImplementedError(f"kvserve.flashinfer: device {device} is not supported (cpu and cuda are)")
    return "cpu"


def raw(t):
    """A tensor as kvserve reads it: fp8 as its bytes (DLPack has no fp8 in
    every torch version; the plan's descriptor says which fp8)."""
    return t.view(torch.uint8) if t is not None and t.dtype in _FP8 else t


def on(t, device, dtype=torch.int32):
    """An index tensor on `device` as int32 (no copy when it already is)."""
    t = torch.as_tensor(t)
    return t.to(device=device, dtype=dtype, non_blocking=True)


def host_ints(t):
    """A host int32 copy of a (small) index tensor, for prepare(). Copying a
    device tensor to the host synchronises, as FlashInfer's plan() does."""
    return torch.as_tensor(t).to(device="cpu", dtype=torch.int32).contiguous()


def scalar(api, name, value):
    """A host float from a FlashInfer scale argument (None: 1)."""
    if value is None:
        return 1.0
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise NotImplementedError(f"kvserve.flashinfer.{api}: argument '{name}' as a tensor of "
                                      f"{value.numel()} values is not supported (one scale per tensor)")
        return float(value.item())
    return float(value)


class PlanCache:
    """Plans by a key of everything their descriptor holds; creating a plan
    validates its descriptor, so a step reuses the plans of the last one."""

    def __init__(self):
        self._plans = {}

    def get(self, plan_class, key, make_desc, device):
        plan = self._plans.get((plan_class, device, key))
        if plan is None:
            plan = self._plans[(plan_class, device, key)] = plan_class.create(make_desc(), device)
        return plan

    def items(self):
        """(key, plan) of every plan made so far."""
        return [(key, plan) for (_, _, key), plan in self._plans.items()]


# Plans without prepare() hold no per-call state, so one cache serves everyone.
SHARED_PLANS = PlanCache()


def workspace_for(plan, device):
    """A scratch buffer for ops FlashInfer runs without one (cached by size)."""
    need = plan.workspace_bytes()
    if need == 0:
        return None
    key = (device, need)
    buf = _SCRATCH.get(key)
    if buf is None:
        buf = _SCRATCH[key] = torch.empty(need + 255, dtype=torch.uint8, device=device)
    return buf


_SCRATCH = {}


def batch_capacity(n):
    """max_batch for a plan serving batches of n: the next power of two, so a
    serving loop whose batch size varies reuses a handful of plans."""
    return 1 << max(0, int(n) - 1).bit_length()
