"""kvserve: LLM-serving kernels (paged-KV attention, KV append, merge states,
sampling, penalties, speculative verification, RMSNorm, gated delta rule).

One class per C++ plan, with the same lifecycle:

    desc = kvserve.BatchPagedDecodeDesc(max_batch=8, num_qo_heads=32, q_dtype=kvserve.DType.f32,
                                        kv=kvserve.PagedKvDesc(page_size=16, num_pages=1024,
                                                               num_kv_heads=8, head_dim=128,
                                                               dtype=kvserve.DType.f32))
    plan = kvserve.BatchPagedDecodePlan.create(desc, "cpu")      # or "cuda:0", a torch.device
    ws = kvserve.workspace(plan)                                  # or any buffer of yours
    plan.prepare(indptr=host_indptr, last_page_len=host_last, workspace=ws)
    plan.run(q=q, kv=kvserve.PagedKv(k_pages=k, v_pages=v, indptr=indptr, indices=indices,
                                     last_page_len=last), out=out, workspace=ws)

Tensors are any DLPack arrays (numpy, torch, cupy, ...), used in place (no
copies): `out` is written where it lies. On CUDA, run() is asynchronous on the
caller's stream (torch's current stream by default) and releases the GIL.
Errors raise kvserve.InvalidProblem / Unsupported / WorkspaceTooSmall with
`field`, `expected` and `given`. `kvserve.flashinfer` is FlashInfer's API on top.
"""

import builtins as _builtins

from . import _kvserve
from ._errors import (CudaError, Error, InternalError, InvalidProblem, ResourceExhausted, Unsupported,
                      WorkspaceTooSmall)
from ._kvserve import *  # noqa: F401,F403  (descriptors, enums, plans, BlockManager)
from ._kvserve import compiled_kernels, cuda_backend_built, cuda_device_count, validate_page_table

__version__ = "0.1.0"

#: Every plan class, by op name ("BatchPagedDecode" -> BatchPagedDecodePlan).
PLANS = {name[:-4]: getattr(_kvserve, name) for name in dir(_kvserve) if name.endswith("Plan")}


class _Group:
    """A keyword-argument container for a group of tensors that a plan takes as
    one argument (the C++ struct of the same name); any object with these
    attributes, or a dict, works as well."""

    __slots__ = ()

    def __init__(self, **fields):
        unknown = set(fields) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{type(self).__name__}: no field {sorted(unknown)[0]!r} "
                            f"(fields: {', '.join(self.__slots__)})")
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(n for n in self.__slots__ if getattr(self, n) is not None)})"


class PagedKv(_Group):
    """A batch's view of a paged KV cache: pools and page table (device tensors)."""
    __slots__ = ("k_pages", "v_pages", "indptr", "indices", "last_page_len")


class PagedMlaCache(_Group):
    """The paged MLA cache: latent and rope pools and their page table."""
    __slots__ = ("ckv_pages", "kpe_pages", "indptr", "indices", "last_page_len")


class PagedKvLengths(_Group):
    """Host copies of a page table's lengths, for prepare() (a PageTable works too)."""
    __slots__ = ("indptr", "last_page_len")


def workspace(plan, like=None):
    """A buffer for `plan`'s workspace on its device: a numpy array for CPU
    plans, a torch uint8 tensor for CUDA plans (torch needed). The 255 spare
    bytes let the binding align it to 256 bytes. `like`, a tensor, picks the
    array library instead."""
    nbytes = plan.workspace_bytes() + 255
    if plan.device == "cpu" and (like is None or not hasattr(like, "new_empty")):
        import numpy
        return numpy.empty(nbytes, dtype=numpy.uint8)
    import torch
    return torch.empty(nbytes, dtype=torch.uint8, device=plan.device)


def list():  # noqa: A001 - the documented name (kvserve.list(), as `kvserve list`)
    """The built kernel configurations: (backend, op, config) per entry."""
    return _builtins.list(compiled_kernels())
