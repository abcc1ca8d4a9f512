"""FlashInfer's paged-cache writers (flashinfer.page) on kvserve's
PagedKvAppend (ragged) and PagedMlaAppend, and its two index helpers."""

import torch

import kvserve as _kv

from . import _common as C
from .attention import _unpack_paged


def get_seq_lens(kv_indptr, kv_last_page_len, page_size):
    """Each request's KV length from its page table."""
    pages = kv_indptr[1:] - kv_indptr[:-1]
    return torch.where(pages > 0, (pages - 1) * page_size + kv_last_page_len, torch.zeros_like(pages)).to(torch.int32)


def get_batch_indices_positions(append_indptr, seq_lens, nnz):
    """For nnz appended tokens (request b's are rows append_indptr[b] ..
    append_indptr[b+1]), the request of each and its position: the last
    rows of that request's seq_lens[b] tokens."""
    device = append_indptr.device
    counts = (append_indptr[1:] - append_indptr[:-1]).to(torch.int64)
    batch = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts, output_size=nnz)
    rows = torch.arange(nnz, device=device)
    start = (seq_lens.to(torch.int64) - counts)[batch]
    positions = rows - append_indptr.to(torch.int64)[batch] + start
    return batch.to(torch.int32), positions.to(torch.int32)


def append_paged_kv_cache(append_key, append_value, batch_indices, positions, paged_kv_cache, kv_indices, kv_indptr,
                          kv_last_page_len, kv_layout="NHD"):
    """Writes rows [nnz, H_kv, D] into the paged cache at (batch_indices, positions)."""
    api = "append_paged_kv_cache"
    C.refuse(api, kv_layout=(kv_layout, ("NHD", "HND")))
    k_pages, v_pages, num_pages, page_size, cache_dtype = _unpack_paged(api, paged_kv_cache, kv_layout)
    heads, dim = append_key.shape[1], append_key.shape[2]
    kv_type, row_type = C.kv_dtype(api, "paged_kv_cache", cache_dtype), C.kv_dtype(api, "append_key", append_key.dtype)
    key = (num_pages, page_size, heads, dim, kv_type, row_type, kv_layout)
    device = append_key.device
    plan = C.SHARED_PLANS.get(_kv.PagedKvAppendPlan, key, lambda: _kv.PagedKvAppendDesc(
        kv=_kv.PagedKvDesc(page_size=page_size, num_pages=num_pages, num_kv_heads=heads, head_dim=dim,
                           dtype=kv_type, layout=getattr(_kv.KvLayout, kv_layout)),
        dtype=row_type, mode=_kv.AppendMode.ragged), C.device_name(device))
    plan.run(k=append_key, v=append_value, batch_indices=C.on(batch_indices, device),
             positions=C.on(positions, device),
             kv=dict(k_pages=k_pages, v_pages=v_pages, indptr=C.on(kv_indptr, device),
                     indices=C.on(kv_indices, device), last_page_len=C.on(kv_last_page_len, device)))


def append_paged_mla_kv_cache(append_ckv, append_kpe, batch_indices, positions, ckv_cache, kpe_cache, kv_indices,
                              kv_indptr, kv_last_page_len):
    """Writes MLA rows (ckv [nnz, ckv_dim], kpe [nnz, kpe_dim]) into the paged MLA cache."""
    api = "append_paged_mla_kv_cache"
    num_pages, page_size, ckv_dim = ckv_cache.shape
    kpe_dim = kpe_cache.shape[2]
    dtype = C.kv_dtype(api, "ckv_cache", ckv_cache.dtype)
    device = append_ckv.device
    plan = C.SHARED_PLANS.get(_kv.PagedMlaAppendPlan, (num_pages, page_size, ckv_dim, kpe_dim, dtype),
                              lambda: _kv.PagedMlaDesc(page_size=page_size, num_pages=num_pages, ckv_dim=ckv_dim,
                                                       kpe_dim=kpe_dim, dtype=dtype), C.device_name(device))
    plan.run(ckv=append_ckv, kpe=append_kpe, batch_indices=C.on(batch_indices, device),
             positions=C.on(positions, device),
             cache=dict(ckv_pages=ckv_cache, kpe_pages=kpe_cache, indptr=C.on(kv_indptr, device),
                        indices=C.on(kv_indices, device), last_page_len=C.on(kv_last_page_len, device)))
